"""``course check``: one line per exercise from the visible checks; a solved copy passes, a stub copy fails with the
check's message, and nothing of a hidden test is run or shown."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_utils.machinery.grading.check import check_notebook, format_lines, without_hidden_tests

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "notebooks" / "00_images_as_tensors.ipynb"
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)


def _hidden_lines(nb) -> list[str]:
    return [ln.strip() for c in nb.cells for block in HIDDEN.findall(c.source) for ln in block.splitlines() if ln.strip()]


def test_hidden_tests_are_removed_before_the_run():
    nb = nbformat.read(LESSON, as_version=4)
    hidden = _hidden_lines(nb)
    assert hidden, "the lesson should have hidden tests for this test to mean something"
    stripped = "\n".join(c.source for c in without_hidden_tests(nb).cells)
    assert "HIDDEN TESTS" not in stripped and not any(line in stripped for line in hidden if len(line) > 12)


@pytest.mark.notebook
def test_solved_copy_passes_stub_copy_fails_with_the_message(tmp_path):
    solved = check_notebook(LESSON)  # the instructor's copy: solutions in, hidden tests present in the file
    assert len(solved) == 2 and all(line.passed for line in solved), format_lines(solved)
    assert [line.message[:12] for line in solved] == ["✓ exercise 1", "✓ exercise 2"]

    stub = tmp_path / "00_images_as_tensors.ipynb"
    stub.write_text((ROOT / "student" / stub.name).read_text(encoding="utf-8"), encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "course_utils", "check", str(stub)], capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 1, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "0 of 2 checks pass"
    assert [ln[:12] for ln in lines[:-1]] == ["✗ exercise 1", "✗ exercise 2"]
    assert all("not done yet" in ln for ln in lines[:-1])
    shown = out.stdout + out.stderr
    assert not any(line in shown for line in _hidden_lines(nbformat.read(LESSON, as_version=4)) if len(line) > 12)


def test_a_missing_file_or_a_notebook_without_exercises_gets_a_clear_error(tmp_path):
    out = subprocess.run([sys.executable, "-m", "course_utils", "check", str(tmp_path / "nope.ipynb")],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "is not a file" in out.stderr
    plain = tmp_path / "plain.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), plain)
    with pytest.raises(SystemExit, match="no graded test cells"):
        check_notebook(plain)
