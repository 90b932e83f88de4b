"""Execute each lesson once per test session (papermill, smoke profile), audit it once, keep the timings.

Every lesson is executed twice in all: the papermill run (recorded numbers, compared outputs, errors) and
the exercise audit (wrong answers through the visible checks and the grader, and the same numbers again).
Both results are cached per worker process; ``--dist loadgroup`` keeps one lesson's tests on one worker.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

from course_utils.machinery.nbtools import lesson_notebooks
from course_utils.machinery.report import execute

ROOT = Path(__file__).resolve().parent.parent
LESSONS = lesson_notebooks(ROOT)
_runs: dict[str, object] = {}
_audits: dict[str, object] = {}
_before: dict[str, dict[str, str]] = {}


def repo_state() -> dict[str, str]:
    """{path: sha256} of every file git sees (tracked, or untracked and not ignored): what a lesson must not touch."""
    out = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "--cached", "-z"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    state = {}
    for rel in filter(None, out.split("\0")):
        path = ROOT / rel
        state[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
    return state


def _save_time(name: str, kind: str, seconds: float) -> None:
    folder = Path(os.environ["COURSE_BUILD"]) / "notebook-times"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.{kind}.json").write_text(json.dumps(seconds))


def read_times() -> dict[str, dict[str, float]]:
    """{lesson: {"papermill": s, "audit": s}} written by the workers of this session."""
    folder = Path(os.environ["COURSE_BUILD"]) / "notebook-times"
    times: dict[str, dict[str, float]] = {}
    for f in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        name, kind = f.stem.rsplit(".", 1)
        times.setdefault(name, {})[kind] = json.loads(f.read_text())
    return times


def run_lesson(path: Path):
    """Execute ``path`` in smoke once per session (the repository state is taken just before)."""
    if path.stem not in _runs:
        _before[path.stem] = repo_state()
        out = Path(os.environ["COURSE_BUILD"]) / "executed"
        t0 = time.perf_counter()
        _runs[path.stem] = execute(path, out, profile="smoke", seed=0, timeout=300, ranges={})
        _save_time(path.stem, "papermill", time.perf_counter() - t0)
    return _runs[path.stem]


def audit(path: Path):
    """The exercise audit of ``path`` (after its papermill run, whose generated data it reuses)."""
    from course_utils.machinery.grading.audit import audit_lesson
    from course_utils.machinery.grading.runner import Limits

    if path.stem not in _audits:
        run_lesson(path)
        t0 = time.perf_counter()
        _audits[path.stem] = audit_lesson(path, limits=Limits(cell_timeout=120, submission_timeout=300),
                                          data_from=Path(os.environ["COURSE_DATA"]))
        _save_time(path.stem, "audit", time.perf_counter() - t0)
    return _audits[path.stem]


def state_before(path: Path) -> dict[str, str]:
    return _before[path.stem]


def executed_lessons(session, timeout: float = 1200) -> Path:
    """The folder of this session's executed lessons, once every lesson has run (for the site tests).

    Lessons whose tests this session runs are awaited (another worker may be executing them: tests/
    conftest.py schedules the site tests last); the others are executed here.
    """
    selected = {item.cls.__name__.removeprefix("Test_") for item in session.items
                if getattr(item, "cls", None) is not None and item.cls.__name__.startswith("Test_")}
    times = Path(os.environ["COURSE_BUILD"]) / "notebook-times"
    deadline = time.monotonic() + timeout
    for path in LESSONS:
        if path.stem not in selected:
            run_lesson(path)
            continue
        while not (times / f"{path.stem}.papermill.json").exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path.stem} was not executed within {timeout:.0f} s by the worker running it")
            time.sleep(2)
    return Path(os.environ["COURSE_BUILD"]) / "executed"
