"""Finding submissions: both layouts, lesson from --lesson / file name / contents, skipped files, and a
hash that changes exactly when the file, the lesson or the limits change. No kernels: milliseconds."""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

from course_utils.machinery.grading.collect import find_submissions, load_lesson
from course_utils.machinery.grading.runner import Limits
from course_utils.machinery.grading.student import student_copy

sys.path.insert(0, str(Path(__file__).parent))
from fixtures.grading_lesson import NAME, lesson, write_lesson  # noqa: E402


def _lessons(tmp_path):
    first = load_lesson(write_lesson(tmp_path / "notebooks"))
    return first, load_lesson(write_lesson(tmp_path / "notebooks", other=True))  # its own grade ids


def _layout(root: Path) -> None:
    (root / "alice").mkdir(parents=True)
    (root / "alice" / ".ipynb_checkpoints").mkdir()
    nbformat.write(lesson(), root / "alice" / NAME)
    nbformat.write(lesson(), root / "alice" / ".ipynb_checkpoints" / NAME)
    (root / "alice" / "data.csv").write_text("1,2")
    nbformat.write(student_copy(lesson()), root / "bob__97_other.ipynb")
    nbformat.write(lesson(), root / "carol_4711_98_grading_fixture.ipynb")
    nbformat.write(lesson(), root / "dave.ipynb")
    (root / "erin__98_grading_fixture.pdf").write_bytes(b"%PDF")
    (root / "frank.ipynb").write_text("garbage")


def test_layouts_students_and_lessons(tmp_path):
    fixture, other = _lessons(tmp_path)
    _layout(tmp_path / "subs")
    subs, skipped = find_submissions(tmp_path / "subs", [fixture, other])
    found = {s.rel: (s.student, s.lesson.path.stem if s.lesson else None) for s in subs}
    assert found == {
        f"alice/{NAME}": ("alice", "98_grading_fixture"),
        "bob__97_other.ipynb": ("bob", "97_other"),  # from the name, although its cells say lesson 98
        "carol_4711_98_grading_fixture.ipynb": ("carol_4711_98_grading_fixture", "98_grading_fixture"),
        "dave.ipynb": ("dave", "98_grading_fixture"),  # from the grade ids inside
        "erin__98_grading_fixture.pdf": ("erin", "98_grading_fixture"),  # gets a row (and an error)
        "frank.ipynb": ("frank", None),  # unreadable, no number: a row saying so
    }
    assert skipped == ["alice/data.csv (not a notebook and no lesson number in its name)"]


def test_forced_lesson_skips_other_lessons_files(tmp_path):
    fixture, other = _lessons(tmp_path)
    _layout(tmp_path / "subs")
    subs, _ = find_submissions(tmp_path / "subs", [fixture, other], only=other)
    assert {s.rel for s in subs} == {"bob__97_other.ipynb", "dave.ipynb", "frank.ipynb"}
    assert all(s.lesson is other for s in subs)


def test_hash_changes_with_the_file_the_lesson_and_the_limits(tmp_path):
    fixture, other = _lessons(tmp_path)
    _layout(tmp_path / "subs")

    def digest(limits=Limits()):
        subs, _ = find_submissions(tmp_path / "subs", [load_lesson(fixture.path), other], limits=limits)
        return {s.rel: s.digest for s in subs}

    base = digest()
    assert base == digest()
    assert base[f"alice/{NAME}"] == base["dave.ipynb"] != base["bob__97_other.ipynb"]  # content, not name
    assert digest(Limits(cell_timeout=120)) == base  # 120 and 120.0 are the same setting
    assert set(digest(Limits(cell_timeout=5)).values()).isdisjoint(base.values())
    for changed_setting in (Limits(device="auto"), Limits(cell_text_mb=2), Limits(notebook_output_mb=50)):
        assert set(digest(changed_setting).values()).isdisjoint(base.values())
    (tmp_path / "subs" / "dave.ipynb").write_text(nbformat.writes(student_copy(lesson())))
    changed = {k for k, v in digest().items() if v != base[k]}
    assert changed == {"dave.ipynb"}
    src = nbformat.read(fixture.path, as_version=4)
    src.cells[-1].source = "print('changed')"
    nbformat.write(src, fixture.path)
    changed = {k for k, v in digest().items() if v != base[k]}
    assert "bob__97_other.ipynb" not in changed and f"alice/{NAME}" in changed
