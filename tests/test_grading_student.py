"""Learner copies: stubs with hints, no hidden tests, no outputs, deterministic, committed copies up to date,
and the fixture's learner copy runs end to end in smoke with only the exercise cells failing (the lessons'
copies are run with wrong answers by the exercise audit, tests/test_notebooks.py)."""
from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import nbformat
import pytest

from course_utils.machinery.cli import main
from course_utils.machinery.grading.collect import load_lesson
from course_utils.machinery.grading.runner import Limits, kernel_env, run_notebook
from course_utils.machinery.grading.student import stale_student_copies, student_copy, write_student_copies
from course_utils.machinery.nbtools import ROOT, lesson_notebooks

sys.path.insert(0, str(Path(__file__).parent))
from fixtures.grading_lesson import NAME, lesson, write_lesson  # noqa: E402


def _by_id(nb) -> dict:
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}


def test_solutions_become_stubs_with_the_hint_and_hidden_tests_go():
    src = lesson()
    cells = _by_id(student_copy(src))
    flip = cells["ex1-flip"].source
    assert "torch.flip(x, dims=[-1])" not in flip and "BEGIN SOLUTION" not in flip
    assert flip.startswith("def flip_h(x: torch.Tensor) -> torch.Tensor:")  # the signature stays
    assert "    raise NotImplementedError('Hint: torch.flip along the last dimension')" in flip
    mean = cells["ex2-mean"].source
    assert mean == "# YOUR CODE HERE\nraise NotImplementedError('Hint: the mean of every value in img, as a Python float')"
    test = cells["ex1-flip-test"].source
    assert "HIDDEN" not in test and "odd = torch.randn" not in test
    assert "expect_shape(out, (2, size, size))" in test  # visible checks stay
    assert cells["ex3-explain"].source.startswith("**Manually graded.**")
    assert "YOUR ANSWER HERE" in cells["ex3-explain"].source and "mirrored place" not in cells["ex3-explain"].source
    assert cells["ex1-flip-test"].metadata["editable"] is False  # nbgrader's LockCells
    assert all("checksum" in c.metadata["nbgrader"] for c in cells.values())
    assert src.cells[0].source == student_copy(src).cells[0].source  # title and badge line kept


def test_stub_without_a_hint_line_says_what_to_do():
    src = lesson()
    for cell in src.cells:
        cell.source = "\n".join(ln for ln in cell.source.split("\n") if "HINT" not in ln)
    stub = _by_id(student_copy(src))["ex2-mean"].source
    assert stub == "# YOUR CODE HERE\nraise NotImplementedError('replace this line with your code')"


def test_outputs_cleared_and_output_is_byte_stable():
    src = lesson()
    src.cells[8].outputs = [nbformat.v4.new_output("stream", name="stdout", text="torch.Size([2, 4, 4])\n")]
    src.cells[8].execution_count = 3
    first = nbformat.writes(student_copy(src))
    assert first == nbformat.writes(student_copy(src))
    noisy = lesson()  # the same lesson as saved by JupyterLab: cell ids, run timings, widget state
    noisy.nbformat_minor = 5
    for i, cell in enumerate(noisy.cells):
        cell.id = f"cell-{i}"
        cell.metadata["execution"] = {"iopub.status.busy": "2026-01-01T00:00:00"}
    noisy.metadata["widgets"] = {"state": {}}
    assert nbformat.writes(student_copy(noisy)) == nbformat.writes(student_copy(lesson()))
    data = json.loads(first)
    assert all(c.get("outputs", []) == [] and c.get("execution_count") is None
               for c in data["cells"] if c["cell_type"] == "code")
    assert all("id" not in c for c in data["cells"])


def test_course_student_check_fails_when_stale_and_passes_after_generating(tmp_path, capsys):
    write_lesson(tmp_path / "notebooks")
    assert main(["student", "--check", "--root", str(tmp_path)]) == 1
    assert main(["student", "--root", str(tmp_path)]) == 0
    assert (tmp_path / "student" / NAME).exists()
    assert main(["student", "--check", "--root", str(tmp_path)]) == 0
    (tmp_path / "student" / NAME).write_text((tmp_path / "student" / NAME).read_text() + " ")
    assert main(["student", "--check", "--root", str(tmp_path)]) == 1
    (tmp_path / "student" / "97_removed.ipynb").write_text("{}")
    write_student_copies(lesson_notebooks(tmp_path), tmp_path / "student")
    assert sorted(p.name for p in (tmp_path / "student").iterdir()) == [NAME]  # removed lesson's copy goes
    assert "up to date" in capsys.readouterr().out


def test_committed_student_copies_match_the_lessons():
    stale = stale_student_copies(lesson_notebooks(ROOT), ROOT / "student")
    assert not stale, f"out of date: {[p.name for p in stale]}; run `course student` and commit student/"


def _unexpected_failures(path: Path, student_nb) -> list[str]:
    """Run a learner copy in smoke; return what went wrong beyond the expected exercise failures."""
    src = load_lesson(path)
    work = Path(sys.modules["tempfile"].mkdtemp(prefix="student-smoke-"))
    (work / "work").mkdir()
    run = asyncio.run(run_notebook(student_nb, work / "work", Limits(cell_timeout=120, submission_timeout=300),
                                   kernel_env(work)))
    problems = []
    for i, (cell, res) in enumerate(zip(run.nb.cells, run.cells)):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code":
            continue
        if meta.get("grade_id") in src.auto:
            if res.status == "ok":
                problems.append(f"test cell {meta['grade_id']} passes on the blank copy (free points)")
        elif meta.get("solution"):
            if res.status != "ok" and res.ename != "NotImplementedError":
                problems.append(f"answer cell {meta['grade_id']}: {res.status} {res.ename}: {res.evalue}")
        elif res.status != "ok":
            problems.append(f"cell {i} ({cell.source.splitlines()[0][:50]!r}): {res.status} {res.ename}: {res.evalue}")
    return problems


def test_fixture_student_copy_runs_with_only_exercise_cells_failing(tmp_path):
    path = write_lesson(tmp_path / "notebooks")
    assert _unexpected_failures(path, student_copy(lesson())) == []
