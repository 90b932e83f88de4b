"""Execute each lesson once per test session (papermill, smoke profile) and keep the timings."""
from __future__ import annotations

import os
import time
from pathlib import Path

from course_utils.nbtools import lesson_notebooks
from course_utils.report import execute

ROOT = Path(__file__).resolve().parent.parent
LESSONS = lesson_notebooks(ROOT)
_runs: dict[str, object] = {}
_times: dict[str, list[float]] = {}


def run_lesson(path: Path, tag: str = "first"):
    """Execute ``path`` in smoke once per (notebook, tag) and cache the result."""
    key = f"{path.stem}:{tag}"
    if key not in _runs:
        out = Path(os.environ["COURSE_BUILD"]) / f"executed-{tag}"
        t0 = time.perf_counter()
        _runs[key] = execute(path, out, profile="smoke", seed=0, timeout=300, ranges={})
        _times.setdefault(path.stem, []).append(time.perf_counter() - t0)
    return _runs[key]

