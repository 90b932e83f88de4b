"""Learner copies of the lessons (``course student``): solutions become stubs, hidden tests go, outputs go.

The lessons in ``notebooks/`` carry nbgrader markup (CONTRIBUTING.md item 8). This module runs
nbgrader's own preprocessors on them as a library - the ones ``nbgrader generate_assignment`` uses,
minus its gradebook - and writes ``student/NN_topic.ipynb``:

* ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` becomes ``# YOUR CODE HERE`` and
  ``raise NotImplementedError("Hint: ...")``, the hint taken from a ``# HINT: ...`` line in the region;
  markdown answers become ``YOUR ANSWER HERE``;
* ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` is removed, the visible checks stay;
* locked cells are marked read-only, every output is cleared, nbgrader checksums are recorded (so the
  copy is also a valid nbgrader release), and volatile metadata is stripped as
  :func:`course_utils.machinery.nbtools.clean` does, so regenerating gives byte-identical files.

The copies are committed (Colab and Binder badges open them); ``course student --check`` and a test
fail when they differ from what the lessons would generate.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
from nbgrader.preprocessors import (CheckCellMetadata, ClearHiddenTests, ClearOutput, ClearSolutions,
                                    ComputeChecksums, LockCells)

from ..nbtools import ROOT, clean, lesson_notebooks

__all__ = ["HINT_RE", "student_copy", "student_path", "write_student_copies", "stale_student_copies"]

HINT_RE = re.compile(r"^\s*#\s*HINT:\s*(?P<hint>.+?)\s*$", re.M)
_STUB = "# YOUR CODE HERE\nraise NotImplementedError({message!r})"
_NO_HINT = "replace this line with your code"


class _ClearSolutionsWithHint(ClearSolutions):
    """nbgrader's ClearSolutions, with the cell's ``# HINT:`` line put into the stub's message."""

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code":
            found = HINT_RE.search(_solution_region(cell.source))
            message = f"Hint: {found['hint']}" if found else _NO_HINT
            self.code_stub = {**self.code_stub, "python": _STUB.format(message=message)}
        return super().preprocess_cell(cell, resources, cell_index)


def _solution_region(source: str) -> str:
    """The text between BEGIN SOLUTION and END SOLUTION (the whole source if there are no markers)."""
    if "BEGIN SOLUTION" not in source:
        return source
    return source.split("BEGIN SOLUTION", 1)[1].split("END SOLUTION", 1)[0]


def student_copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return the learner version of a lesson notebook (the input is not modified).

    Raises nbgrader's error (with the cell in the log) if the markup is inconsistent, e.g. a
    ``BEGIN SOLUTION`` outside a solution cell or two cells with one ``grade_id``.
    """
    nb = copy.deepcopy(nb)
    resources: dict = {}
    steps = [CheckCellMetadata(), LockCells(), _ClearSolutionsWithHint(), ClearOutput(),
             ClearHiddenTests(), ComputeChecksums(), CheckCellMetadata()]
    for step in steps:
        nb, resources = step.preprocess(nb, resources)
    return clean(nb)


def student_path(lesson: Path, out_dir: Path | None = None) -> Path:
    """Where the learner copy of ``lesson`` lives (``student/NN_topic.ipynb``)."""
    return (out_dir or ROOT / "student") / lesson.name


def _render(lesson: Path) -> str:
    return nbformat.writes(student_copy(nbformat.read(lesson, as_version=4))) + "\n"


def stale_student_copies(lessons: list[Path] | None = None, out_dir: Path | None = None) -> list[Path]:
    """The learner copies that are missing or differ from what the lessons generate now."""
    lessons = lesson_notebooks() if lessons is None else lessons
    stale = []
    for lesson in lessons:
        target = student_path(lesson, out_dir)
        if not target.exists() or target.read_text(encoding="utf-8") != _render(lesson):
            stale.append(target)
    return stale


def write_student_copies(lessons: list[Path] | None = None, out_dir: Path | None = None) -> list[Path]:
    """(Re)generate the learner copies; return the ones that changed. Copies of removed lessons are deleted."""
    lessons = lesson_notebooks() if lessons is None else lessons
    out = out_dir or ROOT / "student"
    out.mkdir(parents=True, exist_ok=True)
    changed = []
    for lesson in lessons:
        target, text = student_path(lesson, out), _render(lesson)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            changed.append(target)
    names = {p.name for p in lessons}
    for old in out.glob("[0-9][0-9]_*.ipynb"):
        if old.name not in names:
            old.unlink()
            changed.append(old)
    return changed
