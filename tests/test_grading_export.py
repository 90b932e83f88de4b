"""Gradebook exports from a grades CSV and its roster, without kernels: the graded row of each student and
lesson (a rejected file gives an empty grade, never 0), Canvas's and Moodle's columns, the nbgrader CSV,
and a clear error when the grades carry no LMS ids."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from course_utils.machinery.grading.export import best_rows, export, write_roster
from course_utils.machinery.grading.sheet import write_rows


def _row(student, file, total, max_="3", status="ok"):
    return {"student": student, "lesson": "98_x", "file": file, "status": status, "total": total, "max": max_,
            "manual": "", "seconds": 1, "hash": "h", "feedback": "", "detail": ""}


ROWS = [_row("doejane_12345", "a.ipynb", 3), _row("doejane_12345", "b.ipynb", 1),
        _row("leeann_34567", "x.pdf", 0, max_="", status="error"), _row("=evil_99", "e.ipynb", 2)]


def _read(path: Path) -> list[list[str]]:
    with path.open(newline="") as f:
        return list(csv.reader(f))


def test_best_rows_takes_the_graded_row_and_the_higher_total():
    best = best_rows(ROWS)
    assert best[("doejane_12345", "98_x")]["file"] == "a.ipynb"
    assert best[("leeann_34567", "98_x")] is None


def test_canvas_moodle_and_nbgrader_files(tmp_path, capsys):
    out = tmp_path / "grades.csv"
    write_rows(out, ROWS, [])
    write_roster(out, {"doejane_12345": {"lms": "canvas", "id": "12345", "name": "doejane", "late": True},
                       "leeann_34567": {"lms": "canvas", "id": "34567", "name": "leeann", "late": False}})
    [canvas] = export(out, "canvas", assignment="Lesson 98 (4567)")
    assert _read(canvas) == [["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Lesson 98 (4567)"],
                             ["Points Possible", "", "", "", "", "3"],
                             ["doejane", "12345", "", "", "", "3"], ["leeann", "34567", "", "", "", ""]]
    assert "no Canvas id for '=evil_99'" in capsys.readouterr().out
    [nbg] = export(out, "csv")
    lines = _read(nbg)
    assert lines[0][:4] == ["assignment", "duedate", "timestamp", "student_id"]
    assert ["98_x", "", "", "'=evil_99", "", "", "", "2", "0", "2", "3"] in lines  # spreadsheet-safe
    with pytest.raises(SystemExit, match="no Moodle ids"):
        export(out, "moodle")
    write_roster(out, {"doejane_12345": {"lms": "moodle", "id": "12345", "name": "Jane Doe"}})
    [moodle] = export(out, "moodle")
    assert moodle.name == "grades-moodle-98_x.csv"
    assert _read(moodle)[1] == ["Participant 12345", "Jane Doe", "", "Submitted for grading", "3", "3", "Yes",
                                "", "", ""]
