"""What a grading kernel may use: its resource limits (:class:`Limits`) and its environment (:func:`kernel_env`)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Limits", "kernel_env"]

_PASS_ENV = {"PATH", "LANG", "TZ", "PYTHONPATH", "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV",
             "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "COURSE_DEVICE"}


@dataclass(frozen=True)
class Limits:
    """Per-submission resource limits."""

    cell_timeout: float = 120.0  # s, one cell
    submission_timeout: float = 600.0  # s, the whole notebook, restarts included
    memory_mb: int = 6144  # address-space cap; importing torch alone reserves ~3.3 GB of it; 0: none
    max_restarts: int = 3  # kernel replacements after a cell times out or kills the kernel
    device: str = "cpu"  # COURSE_DEVICE for the kernels; "auto": whatever the machine has (GPU included)
    cell_text_mb: float = 1.0  # printed text kept per cell
    cell_output_mb: float = 5.0  # all output kept per cell (a lesson cell's figures reach ~1.7 MB)
    notebook_output_mb: float = 25.0  # all output kept per notebook


def kernel_env(root: Path, data_dir: Path | None = None, threads: int = 1, device: str = "cpu") -> dict[str, str]:
    """Environment for a grading kernel: smoke profile, offline, every cache and home inside ``root``.

    ``device="cpu"`` (the default) hides every GPU from the kernel; ``"auto"`` passes the grader's
    ``CUDA_VISIBLE_DEVICES`` and ``COURSE_DEVICE`` on; any other value (``"cuda"``, ``"cuda:1"``,
    ``"mps"``) becomes the kernel's ``COURSE_DEVICE``.
    """
    # Only what a Python kernel needs is passed on: no tokens or credentials from the grader's environment.
    env = {k: v for k, v in os.environ.items() if k in _PASS_ENV or k.startswith("LC_")}
    if device == "cpu":
        env.update(CUDA_VISIBLE_DEVICES="", COURSE_DEVICE="cpu")
    elif device != "auto":
        env["COURSE_DEVICE"] = device
    for name in ("home", "tmp", "data", "build", "cache"):
        (root / name).mkdir(parents=True, exist_ok=True)
    env.update({
        "COURSE_PROFILE": "smoke", "COURSE_OFFLINE": "1", "MPLBACKEND": "Agg", "COURSE_LIVE": "0",
        "COURSE_DATA": str(data_dir or root / "data"), "COURSE_BUILD": str(root / "build"),
        "HOME": str(root / "home"), "TMPDIR": str(root / "tmp"), "XDG_CACHE_HOME": str(root / "cache"),
        "IPYTHONDIR": str(root / "home" / ".ipython"), "MPLCONFIGDIR": str(root / "cache" / "mpl"),
        "JUPYTER_RUNTIME_DIR": str(root / "tmp"), "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": str(threads),
    })
    return env
