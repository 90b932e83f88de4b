"""Every lesson runs in the smoke profile, records its numbers, and they are in the expected range."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from nbrun import LESSONS, ROOT, run_lesson
from course_utils.record import check, expected_for

pytestmark = pytest.mark.notebook
IDS = [p.stem for p in LESSONS]


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_lesson_runs_and_metrics_in_range(path: Path, ranges):
    res = run_lesson(path)
    assert not res.error, f"{path.name} failed: {res.error}"
    assert res.profile == "smoke", f"{path.name} ran in profile {res.profile!r}, expected smoke"
    assert res.metrics, f"{path.name} recorded no metrics: call course_utils.record(name, value)"
    expected = expected_for(ranges, path.stem, "smoke")
    assert expected, f"tests/expected/{path.stem}.toml has no [smoke] (or [any]) table"
    problems = check(res.metrics, expected)
    assert not problems, f"{path.name}: " + "; ".join(problems)


def _repo_files() -> set[str]:
    """Files git would see (tracked or untracked, not ignored): what a lesson must not create."""
    out = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "--cached"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return set(out.splitlines())


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_lesson_is_deterministic_and_tidy(path: Path):
    first = run_lesson(path)
    before = _repo_files()
    second = run_lesson(path, tag="second")
    assert not second.error, second.error
    assert second.metrics == first.metrics, "same seed, different metrics: something is not seeded"
    new = _repo_files() - before
    assert not new, f"{path.name} left files outside build/ and the data cache: {sorted(new)}"
    assert Path(os.environ["COURSE_DATA"]).is_relative_to(ROOT / "build")
