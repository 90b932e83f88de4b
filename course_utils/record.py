"""Record a lesson's key numbers so the learner sees them and the tests and report can check them.

``record("val_acc", 0.71)`` shows a one-row table in the notebook and stores the value in the cell's
output under a custom MIME type, which :func:`read_metrics` reads back from an executed notebook.
Expected ranges per lesson and profile live in ``tests/expected/<lesson>.toml``; :func:`check` applies them.
"""
from __future__ import annotations

import json
import math
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as the tomli package (pyproject)
    import tomli as tomllib
from pathlib import Path
from typing import Any

__all__ = ["MIME", "record", "recorded", "reset", "read_metrics", "load_ranges", "expected_for", "check", "format_range"]

MIME = "application/vnd.cv-course.metric+json"
_values: dict[str, Any] = {}
_profile: str | None = None


def reset(cfg=None) -> None:
    """Forget what was recorded (setup calls this)."""
    global _profile
    _values.clear()
    _profile = getattr(cfg, "profile", None)


def _plain(value):
    """Turn tensors, numpy scalars and tuples into JSON-friendly Python values."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def record(name: str, value, note: str = "") -> None:
    """Record one metric (a number, or a list such as a shape) and show it."""
    if not name.isidentifier():
        raise ValueError(f"metric name {name!r} must be a Python identifier, e.g. 'val_acc'")
    value = _plain(value)
    json.dumps(value)  # fail here, not in the test, if it cannot be stored
    _values[name] = value
    shown = f"{value:.4g}" if isinstance(value, float) else str(value)
    payload = {"name": name, "value": value, "profile": _profile, "note": note}
    try:
        from IPython import get_ipython
        from IPython.display import display
        if get_ipython() is not None:
            html = (f"<table><tr><td><b>recorded</b></td><td><code>{name}</code></td>"
                    f"<td>{shown}</td><td><i>{note}</i></td></tr></table>")
            display({MIME: payload, "text/html": html, "text/plain": f"recorded {name} = {shown}"},
                    raw=True)
            return
    except ImportError:
        pass
    print(f"recorded {name} = {shown}")


def recorded() -> dict:
    """The metrics recorded since the last setup call."""
    return dict(_values)


def read_metrics(nb) -> tuple[dict, str | None]:
    """Read ``(metrics, profile)`` back from an executed notebook (path or nbformat node)."""
    if isinstance(nb, (str, Path)):
        nb = json.loads(Path(nb).read_text(encoding="utf-8"))
    metrics, profile = {}, None
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            payload = out.get("data", {}).get(MIME)
            if payload:
                metrics[payload["name"]] = payload["value"]
                profile = payload.get("profile") or profile
    return metrics, profile


def load_ranges(path: str | Path) -> dict:
    """Load ``{lesson: {profile: {metric: spec}}}`` from a folder of ``<lesson>.toml`` files (or one file)."""
    path = Path(path)
    if path.is_file():
        return tomllib.loads(path.read_text(encoding="utf-8"))
    return {f.stem: tomllib.loads(f.read_text(encoding="utf-8")) for f in sorted(path.glob("*.toml"))}


def expected_for(ranges: dict, lesson: str, profile: str | None) -> dict:
    """The ranges for ``lesson`` in ``profile``, falling back to the lesson's ``any`` table."""
    tables = ranges.get(lesson, {})
    return tables.get(profile or "", tables.get("any", {}))


def format_range(spec: dict) -> str:
    if "equals" in spec:
        return f"== {spec['equals']}"
    lo, hi = spec.get("min"), spec.get("max")
    if lo is not None and hi is not None:
        return f"[{lo}, {hi}]"
    return f">= {lo}" if lo is not None else f"<= {hi}"


def check(metrics: dict, ranges: dict) -> list[str]:
    """Return a list of problems (empty when every expected metric is present and in range)."""
    problems = []
    for name, spec in ranges.items():
        if name not in metrics:
            problems.append(f"{name}: not recorded (expected {format_range(spec)})")
            continue
        v = metrics[name]
        if "equals" in spec:
            if v != spec["equals"]:
                problems.append(f"{name} = {v}, expected {spec['equals']}")
            continue
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            problems.append(f"{name} = {v!r} is not a number")
            continue
        if ("min" in spec and v < spec["min"]) or ("max" in spec and v > spec["max"]):
            problems.append(f"{name} = {v:.4g} outside {format_range(spec)}")
    return problems
