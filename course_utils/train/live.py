"""Live training curves: in a notebook, ``fit`` shows ``History.plot()`` in one display, redrawn as epochs end.

One output is created when training starts and *replaced* (``DisplayHandle.update``) after each epoch, so
the cell holds one figure, not one per epoch; the progress bar is a separate output and stays. Executed
by papermill (or shown on the site), the last update is what the saved notebook keeps: the final curves.

Redrawing a figure takes ~0.1 s, so updates are throttled to one every ``min_interval`` seconds, plus a
last one when training ends: a smoke run of a few fast epochs draws once. Nothing is drawn outside an
IPython kernel (scripts, pytest), and ``$COURSE_LIVE=0`` switches it off everywhere (``=1`` on).
"""
from __future__ import annotations

import os
import time

__all__ = ["in_notebook", "live_default", "LiveCurves"]


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Colab, Binder, papermill); False in scripts and pytest."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def live_default(quiet: bool) -> bool:
    """``fit(live=None)``: $COURSE_LIVE if set (0 or 1), else on in a notebook unless ``quiet``."""
    env = os.environ.get("COURSE_LIVE", "").strip()
    if env in ("0", "1"):
        return env == "1"
    if env:
        raise ValueError(f"$COURSE_LIVE={env!r}: use 1 (live curves on), 0 (off), or leave it unset")
    return not quiet and in_notebook()


class LiveCurves:
    """One notebook display of a History's curves, replaced at most every ``min_interval`` seconds."""

    def __init__(self, min_interval: float = 1.0, clock=time.monotonic):
        from IPython.display import display

        self.min_interval, self.clock = min_interval, clock
        self.draws = 0  # how many figures were rendered (the tests read this)
        self.handle = display({"text/plain": "live curves: the first epoch is training..."}, raw=True,
                              display_id=True)
        self._last = clock()

    def update(self, history, final: bool = False) -> bool:
        """Redraw if ``final`` or ``min_interval`` has passed since the last draw; returns whether it drew."""
        if not history.rows or (not final and self.clock() - self._last < self.min_interval):
            return False
        fig = history.plot()
        if self.handle is not None:
            self.handle.update(fig)
        self.draws += 1
        self._last = self.clock()
        return True
