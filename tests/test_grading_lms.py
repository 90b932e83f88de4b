"""Reading a class in as the LMS hands it out: made-up Canvas and Moodle downloads (zip and folder), the
student ids and late marks read from the names, and a row with a reason for every file that cannot be
graded (not a notebook, another lesson's notebook, two files for one lesson, an unreadable zip, a name
the LMS did not write), while the rest of the class is staged. No kernels: milliseconds."""
from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from course_utils.machinery.grading.lms import detect, parse_canvas, parse_moodle, read_download, take_in
from course_utils.machinery.grading.student import student_copy

sys.path.insert(0, str(Path(__file__).parent))
from fixtures.grading_lesson import NAME, OTHER, lesson, other_lesson, write_lesson  # noqa: E402

STEM, L97 = NAME[:-6], OTHER[:-6]


def _nb(nb) -> bytes:
    return nbformat.writes(nb).encode()


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def canvas_download() -> dict[str, bytes]:
    """A Canvas "Download Submissions" zip's files, the awkward cases included."""
    inner = _zip({f"work/{NAME}": _nb(lesson()), "__MACOSX/._x": b""})
    return {
        f"doejane_12345_67890_{NAME}": _nb(lesson()),
        f"smithbob_LATE_23456_67891_{NAME}": _nb(student_copy(lesson())),
        f"leeann_34567_67892_{NAME}": _nb(student_copy(lesson())),  # first upload ...
        f"leeann_34567_67899_{NAME[:-6]}-1.ipynb": _nb(lesson()),  # ... and the later one, renamed by Canvas
        "kimtae_45678_67893_98_grading_fixture.pdf": b"%PDF-1.4",  # not a notebook
        f"parkmin_56789_67894_{NAME}": _nb(other_lesson()),  # lesson 97's notebook named as 98's
        "wuling_67890_67895_homework.zip": inner,  # a zip holding the notebook
        "nguyenan_78901_67896_homework.zip": b"PK\x03\x04 not really a zip",
        f"{NAME}": _nb(lesson()),  # added by hand: whose?
    }


def moodle_download() -> dict[str, bytes]:
    return {
        f"Jane Doe_12345_assignsubmission_file_/{NAME}": _nb(lesson()),
        f"Bob Smith_23456_assignsubmission_file_/{NAME}": _nb(student_copy(lesson())),
        "Bob Smith_23456_assignsubmission_onlinetext_/onlinetext.html": b"<p>see file</p>",
        f"Ann Lee_34567_assignsubmission_file_/notes/{OTHER}": _nb(other_lesson()),
    }


@pytest.fixture
def lessons(tmp_path):
    return {STEM: write_lesson(tmp_path / "nb"), L97: write_lesson(tmp_path / "nb", other=True)}


def test_names_are_parsed_as_each_lms_writes_them():
    assert parse_canvas(f"doejane_LATE_12345_67890_{NAME}") == {
        "lms": "canvas", "student": "doejane_12345", "id": "12345", "name": "doejane", "submission": "67890",
        "late": True, "file": NAME}
    assert parse_canvas(f"doejane__{NAME}") is None and parse_canvas(f"a/b_1_2_{NAME}") is None
    assert parse_moodle(f"Jane Doe_12345_assignsubmission_file_/sub/{NAME}")["file"] == f"sub/{NAME}"
    assert parse_moodle(f"Jane Doe_12345_assignsubmission_file_/{NAME}")["student"] == "Jane Doe_12345"
    assert parse_moodle(f"alice/{NAME}") is None
    assert detect(list(canvas_download())) == "canvas"
    assert detect(list(moodle_download())) == "moodle"
    assert detect([f"alice/{NAME}", f"bob__{NAME}"]) == "plain"


def test_canvas_zip_stages_the_class_and_keeps_a_row_for_every_file_it_cannot_grade(tmp_path, lessons):
    src = tmp_path / "submissions.zip"
    src.write_bytes(_zip(canvas_download()))
    intake = take_in(src, tmp_path / "stage", lessons)
    assert intake.lms == "canvas"
    staged = sorted(p.relative_to(intake.folder).as_posix() for p in intake.folder.rglob("*") if p.is_file())
    assert staged == [f"doejane_12345/{NAME}", f"leeann_34567/{NAME}", f"smithbob_23456/{NAME}",
                      f"wuling_67890/{NAME}"]
    # the later of leeann's two files (the solution) is the one graded
    assert nbformat.read(intake.folder / f"leeann_34567/{NAME}", 4) == nbformat.reads(_nb(lesson()), 4)
    assert intake.roster["smithbob_23456"]["late"] and not intake.roster["doejane_12345"]["late"]
    assert intake.roster["doejane_12345"]["id"] == "12345"
    why = {r["file"]: (r["student"], r["lesson"], r["status"], r["detail"]) for r in intake.rejected}
    assert set(why) == {f"leeann_34567_67892_{NAME}", "kimtae_45678_67893_98_grading_fixture.pdf",
                        f"parkmin_56789_67894_{NAME}", "nguyenan_78901_67896_homework.zip", NAME}
    assert why[f"leeann_34567_67892_{NAME}"][:2] == ("leeann_34567", STEM)
    assert "second file" in why[f"leeann_34567_67892_{NAME}"][3]
    assert "not a notebook (.pdf)" in why["kimtae_45678_67893_98_grading_fixture.pdf"][3]
    assert f"notebook of {L97}, not of {STEM}" in why[f"parkmin_56789_67894_{NAME}"][3]
    assert "unreadable zip" in why["nguyenan_78901_67896_homework.zip"][3]
    assert why[NAME][0] == "" and "cannot tell whose file" in why[NAME][3]
    assert {r["status"] for r in intake.rejected} == {"error"}


def test_moodle_folder_and_zip_give_the_same_intake(tmp_path, lessons):
    files = moodle_download()
    folder = tmp_path / "download"
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    (tmp_path / "d.zip").write_bytes(_zip(files))
    a, b = take_in(folder, tmp_path / "sa", lessons), take_in(tmp_path / "d.zip", tmp_path / "sb", lessons)
    for intake in (a, b):
        assert intake.lms == "moodle"
        staged = sorted(p.relative_to(intake.folder).as_posix() for p in intake.folder.rglob("*") if p.is_file())
        assert staged == [f"Ann Lee_34567/{OTHER}", f"Bob Smith_23456/{NAME}", f"Jane Doe_12345/{NAME}"]
        assert intake.roster["Jane Doe_12345"] == {"lms": "moodle", "id": "12345", "name": "Jane Doe",
                                                   "submission": "", "late": False, "file": NAME}
        assert [(r["student"], r["file"]) for r in intake.rejected] == [
            ("Bob Smith_23456", "Bob Smith_23456_assignsubmission_onlinetext_/onlinetext.html")]
    assert a.rejected == b.rejected and a.roster == b.roster


def test_with_lesson_given_another_lessons_notebook_gets_a_row(tmp_path, lessons):
    src = tmp_path / "d.zip"
    src.write_bytes(_zip(moodle_download()))
    intake = take_in(src, tmp_path / "s", lessons, only=STEM)
    assert {r["student"]: r["detail"] for r in intake.rejected}["Ann Lee_34567"].startswith(f"this is the notebook of {L97}")


def test_a_plain_folder_is_graded_where_it_is_and_a_broken_download_says_what_to_do(tmp_path, lessons):
    (tmp_path / "plain" / "alice").mkdir(parents=True)
    (tmp_path / "plain" / "alice" / NAME).write_bytes(_nb(lesson()))
    intake = take_in(tmp_path / "plain", tmp_path / "s", lessons)
    assert (intake.lms, intake.folder, intake.rejected) == ("plain", tmp_path / "plain", [])
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(SystemExit, match="neither a folder nor a readable zip"):
        read_download(tmp_path / "broken.zip")


def test_two_files_of_one_name_are_never_overwritten_silently(tmp_path, lessons):
    src = tmp_path / "d.zip"
    src.write_bytes(_zip({"ann_111_10_Untitled.ipynb": _nb(lesson()), "ann_111_11_Untitled.ipynb": b"garbage",
                          f"bo_222_12_{NAME}": _nb(lesson())}))
    intake = take_in(src, tmp_path / "s", lessons)
    assert nbformat.read(intake.folder / "ann_111" / "Untitled.ipynb", 4) == nbformat.reads(_nb(lesson()), 4)
    assert [(r["file"], "also named Untitled.ipynb" in r["detail"]) for r in intake.rejected] == [
        ("ann_111_11_Untitled.ipynb", True)]
