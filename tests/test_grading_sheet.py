"""The grades CSV: formula-safe text that reads back as written, rows keyed by (student, lesson, file),
columns merged lesson by lesson, atomic writes; and feedback names unique per submission. No kernels."""
from __future__ import annotations

import csv

import pytest

from course_utils.machinery.grading.grade import feedback_name
from course_utils.machinery.grading.sheet import FIXED, TAIL, merge_columns, protect, read_rows, unprotect, write_rows

NAMES = ["=1+2", "+x", "-x", "@SUM(A1)", "\tx", "\rx", "'=x", "''+x", "'abc", "alice", "o'neil", "", "'", "a-b"]


@pytest.mark.parametrize("name", NAMES)
def test_protected_text_never_starts_a_formula_and_reads_back(name):
    written = protect(name)
    assert not written.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert unprotect(written) == name
    assert (written == name) == (not name.lstrip("'").startswith(("=", "+", "-", "@", "\t", "\r")))


def _row(student, lesson, file, **kw):
    return {"student": student, "lesson": lesson, "file": file, "status": "ok", "total": 1.5, "max": 3.0, **kw}


def test_rows_round_trip_with_formula_names_and_numbers(tmp_path):
    out = tmp_path / "grades.csv"
    rows = [_row("=carol", "98_x", "=carol__98_x.ipynb", ex1=1.0, detail="-1 was returned"),
            _row("\tbob", "98_x", "\tbob/98_x.ipynb", ex1=0, hash="00ab")]
    write_rows(out, rows, ["ex1"])
    raw = list(csv.reader(out.open(newline="", encoding="utf-8")))
    assert raw[0] == [*FIXED, "ex1", *TAIL]
    assert all(not field.startswith(("=", "+", "-", "@", "\t", "\r")) for line in raw for field in line)
    assert raw[1][:3] == ["'\tbob", "98_x", "'\tbob/98_x.ipynb"]  # sorted by lesson, then student
    back, cols = read_rows(out)
    assert cols == ["ex1"]
    carol = back[("=carol", "98_x", "=carol__98_x.ipynb")]
    assert (carol["total"], carol["ex1"], carol["detail"], carol["hash"]) == ("1.5", "1", "-1 was returned", "")
    assert back[("\tbob", "98_x", "\tbob/98_x.ipynb")]["hash"] == "00ab"
    write_rows(out, list(back.values()), cols)  # what a resumed run does with rows it keeps
    assert read_rows(out) == (back, cols)
    assert not list(tmp_path.glob(".*.tmp"))


def test_columns_are_merged_lesson_by_lesson_and_old_ones_kept():
    by_lesson = {"98_x": ["a-test", "b-test", "c-explain"], "02_y": ["l2-test"]}
    assert merge_columns(by_lesson, []) == ["l2-test", "a-test", "b-test", "c-explain"]
    assert merge_columns(by_lesson, ["a-test", "gone-test", "l2-test"]) == [
        "l2-test", "a-test", "b-test", "c-explain", "gone-test"]


def test_same_file_in_two_lessons_is_two_rows(tmp_path):
    out = tmp_path / "grades.csv"
    write_rows(out, [_row("mia", "98_x", "mia.ipynb"), _row("mia", "97_y", "mia.ipynb", total=0)], [])
    assert set(read_rows(out)[0]) == {("mia", "98_x", "mia.ipynb"), ("mia", "97_y", "mia.ipynb")}


def test_feedback_names_are_unique_per_submission_and_lesson():
    rels = ["dan/98_x.ipynb", "dan__98_x.ipynb", "dan__98_x.pdf", "Dan__98_x.ipynb", "a b__98_x.ipynb",
            "a_b__98_x.ipynb", "a/b__98_x.ipynb", "a__b__98_x.ipynb"]
    names = [feedback_name(r, "98_x") for r in rels]
    assert len({n.lower() for n in names}) == len(rels)  # case-insensitive file systems too
    assert names[0].startswith("dan__98_x-") and names[0].endswith(".txt")
    assert feedback_name("mia.ipynb", "98_x") != feedback_name("mia.ipynb", "97_y")
    assert feedback_name("dan/98_x.ipynb", "98_x") == names[0]  # stable across runs
    odd = feedback_name("-=x/" + "y" * 300 + ".ipynb", "")
    assert odd[0] not in "-." and len(odd) < 100 and "/" not in odd
