"""Find the submissions in a folder and the lesson each belongs to (for ``course grade``).

Layouts understood (hidden files and folders are skipped)::

    SUBMISSIONS_DIR/<student>/.../<NN_topic>.ipynb      one folder per student (nbgrader's layout too)
    SUBMISSIONS_DIR/<student>__<NN_topic>.ipynb         flat; LMS exports like alice_123_NN_topic.ipynb too

The lesson comes from ``--lesson``, else from ``NN_`` in the file name, else from the grade ids inside.
Other files are skipped unless their name carries a lesson number (a PDF handed in for lesson 03 gets
a row with status ``error``). Every file is read once, up front: later writes to it change nothing.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.utils import is_grade, is_solution, is_task

from .runner import Limits
from .student import student_copy

__all__ = ["GRADER_VERSION", "Lesson", "Submission", "load_lesson", "find_submissions", "grade_id"]

GRADER_VERSION = "3"  # bump when scoring changes: every submission is graded again
_LESSON_IN_NAME = re.compile(r"(?<![0-9])([0-9]{2})_[A-Za-z]")
_SKIP_DIRS = {"__MACOSX", ".ipynb_checkpoints"}


def grade_id(cell) -> str | None:
    """The nbgrader grade_id of a cell, None for ordinary cells."""
    return cell.metadata.get("nbgrader", {}).get("grade_id")


@dataclass
class Lesson:
    """A source lesson: its notebook, learner copy, and graded cells (grade_id -> points)."""

    path: Path
    nb: nbformat.NotebookNode
    student: nbformat.NotebookNode
    auto: dict[str, float]  # autograded test cells
    manual: dict[str, float]  # answers and tasks graded by hand
    digest: str

    @property
    def number(self) -> str:
        return self.path.name[:2]


def load_lesson(path: Path) -> Lesson:
    """Read a source lesson and work out its graded cells."""
    raw = path.read_bytes()
    nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
    auto, manual = {}, {}
    for cell in nb.cells:
        gid, points = grade_id(cell), float(cell.metadata.get("nbgrader", {}).get("points", 0) or 0)
        if is_grade(cell) and not is_solution(cell) and cell.cell_type == "code":
            auto[gid] = points
        elif is_grade(cell) or is_task(cell):
            manual[gid] = points
    return Lesson(path, nb, student_copy(nb), auto, manual, hashlib.sha256(raw).hexdigest())


@dataclass
class Submission:
    """One submitted file: who, which lesson, its bytes (read once, so later writes to it change nothing)."""

    path: Path
    rel: str
    student: str
    lesson: Lesson | None
    data: bytes = b""
    digest: str = ""


def _student_of(rel: Path) -> str:
    if len(rel.parts) > 1:
        return rel.parts[0]
    return rel.stem.split("__", 1)[0] if "__" in rel.stem else rel.stem


def _lesson_from_contents(data: bytes, lessons: list[Lesson]) -> Lesson | None:
    try:
        ids = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in json.loads(data)["cells"]}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    overlap = [(len(ids & ({grade_id(c) for c in les.nb.cells} - {None})), les) for les in lessons]
    best = max(overlap, key=lambda t: t[0], default=(0, None))
    return best[1] if best[0] else None


def find_submissions(folder: Path, lessons: list[Lesson], only: Lesson | None = None,
                     limits: Limits = Limits()) -> tuple[list[Submission], list[str]]:
    """The submissions under ``folder`` and the files that were skipped (with why)."""
    by_number = {les.number: les for les in lessons}
    subs, skipped = [], []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder)
        if any(part.startswith(".") or part in _SKIP_DIRS for part in rel.parts):
            continue
        named = _LESSON_IN_NAME.search(path.name)
        named_lesson = by_number.get(named.group(1)) if named else None
        if path.suffix != ".ipynb" and named_lesson is None:
            skipped.append(f"{rel} (not a notebook and no lesson number in its name)")
            continue
        if only is not None and named_lesson is not None and named_lesson is not only:
            continue  # another lesson's submission
        data = path.read_bytes()
        lesson = only or named_lesson or _lesson_from_contents(data, lessons)
        subs.append(Submission(path, rel.as_posix(), _student_of(rel), lesson, data))
    for sub in subs:
        settings = (GRADER_VERSION, float(limits.cell_timeout), float(limits.submission_timeout), limits.memory_mb,
                    limits.device, float(limits.cell_text_mb), float(limits.cell_output_mb),
                    float(limits.notebook_output_mb))
        h = hashlib.sha256(repr(settings).encode())
        h.update(sub.lesson.digest.encode() if sub.lesson else b"-")
        h.update(sub.data)
        sub.digest = h.hexdigest()[:16]
    return subs, skipped
