"""A made-up Canvas download and a made-up Moodle download graded end to end by ``course grade``: into the
LMS's import file, with the class report, and a class graded in two shards merges to the CSV of one run."""
from __future__ import annotations

import csv
import io
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from course_utils.machinery.cli import main
from course_utils.machinery.grading.student import student_copy

sys.path.insert(0, str(Path(__file__).parent))
from fixtures.grading_lesson import NAME, lesson, with_answers, write_lesson  # noqa: E402

pytestmark = pytest.mark.xdist_group("grading-batch")
STEM = NAME[:-6]
# Generous: this runs on shared 2-core machines where a loaded kernel may take 20 s for one cell.
LIMITS = ["--cell-timeout", "60", "--timeout", "240", "--quiet", "--jobs", "2"]
WRONG_MEAN = "mean_value = img.mean().item() + 0.5"  # passes the visible range, fails the hidden check


def _zip(path: Path, files: dict[str, object]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, nb in files.items():
            z.writestr(name, nb if isinstance(nb, bytes) else nbformat.writes(nb))
    return path


def _csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def canvas(tmp_path_factory):
    root = tmp_path_factory.mktemp("canvas")
    write_lesson(root / "notebooks")
    src = _zip(root / "submissions.zip", {
        f"doejane_12345_67890_{NAME}": lesson(),
        f"smithbob_LATE_23456_67891_{NAME}": student_copy(lesson()),
        f"leeann_34567_67892_{NAME}": with_answers(lesson(), ex2_mean=WRONG_MEAN),
        f"parkmin_56789_67894_{NAME}": with_answers(lesson(), ex2_mean=WRONG_MEAN),
        "kimtae_45678_67893_98_grading_fixture.pdf": b"%PDF-1.4",
    })
    out = root / "build" / "grades" / "grades.csv"
    args = ["grade", str(src), "--root", str(root), *LIMITS]
    assert main([*args, "--out", str(out), "--export", "canvas", "--export", "csv"]) == 0
    for i in range(2):
        assert main([*args, "--out", str(root / f"shard{i}" / "grades.csv"), "--shard", f"{i}/2"]) == 0
    merged = root / "merged" / "grades.csv"
    assert main(["grade", "--root", str(root), "--merge", str(root / "shard0" / "grades.csv"),
                 str(root / "shard1" / "grades.csv"), "--out", str(merged), "--export", "canvas"]) == 0
    return {"root": root, "out": out, "merged": merged}


def test_canvas_download_grades_into_canvas_gradebook_csv(canvas):
    with (canvas["out"].with_name("grades-canvas.csv")).open(newline="") as f:
        lines = list(csv.reader(f))
    assert lines[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", STEM]
    assert lines[1] == ["Points Possible", "", "", "", "", "3"]
    assert sorted(lines[2:]) == [["doejane", "12345", "", "", "", "3"], ["kimtae", "45678", "", "", "", ""],
                                 ["leeann", "34567", "", "", "", "2"], ["parkmin", "56789", "", "", "", "2"],
                                 ["smithbob", "23456", "", "", "", "0"]]
    nbg = {r["student_id"]: r for r in _csv(canvas["out"].with_name("grades-nbgrader.csv"))}
    assert (nbg["12345"]["score"], nbg["12345"]["max_score"], nbg["12345"]["assignment"]) == ("3", "3", STEM)


def test_the_pdf_keeps_its_row_with_the_reason(canvas):
    rows = {r["student"]: r for r in _csv(canvas["out"])}
    assert rows["kimtae_45678"]["status"] == "error" and "not a notebook (.pdf)" in rows["kimtae_45678"]["detail"]
    assert rows["doejane_12345"]["file"] == f"doejane_12345/{NAME}"


def test_the_class_report_shows_which_exercise_was_hard(canvas):
    md = canvas["out"].with_name("report.md").read_text()
    html = canvas["out"].with_name("report.html").read_text()
    # ex2 (mean) lost by leeann, parkmin (the same wrong answer) and smithbob (blank): 1 of 4 full marks
    ex2 = next(ln for ln in md.splitlines() if ln.startswith("| ex2-mean-test"))
    assert "| 1 | 0.25 | 0.43 | 25% | ✗ exercise 2" in ex2 and ex2.endswith("(2×) |")
    assert md.index("| ex2-mean-test") < md.index("| ex1-flip-test")  # the hardest first
    assert "smithbob_23456 · 0/3 · ok · late · lost: ex1-flip-test 0/2, ex2-mean-test 0/1" in md
    assert "kimtae_45678" in md.split("### Not graded")[1]
    assert html.count("data:image/png;base64,") == 1 and canvas["out"].with_name(f"report-{STEM}.png").exists()


def test_two_shards_merge_to_the_csv_of_one_run(canvas):
    def strip(rows):
        return sorted(({k: v for k, v in r.items() if k != "seconds"} for r in rows), key=lambda r: r["file"])

    shards = [_csv(canvas["root"] / f"shard{i}" / "grades.csv") for i in range(2)]
    assert all(shards) and sum(map(len, shards)) == 5  # each shard graded a part of the class
    assert list(_csv(canvas["merged"])[0]) == list(_csv(canvas["out"])[0])  # same columns, same order
    assert strip(_csv(canvas["merged"])) == strip(_csv(canvas["out"]))
    assert (canvas["merged"].with_name("grades-canvas.csv").read_text()
            == canvas["out"].with_name("grades-canvas.csv").read_text())


def test_moodle_download_grades_into_the_grading_worksheet(tmp_path):
    write_lesson(tmp_path / "notebooks")
    src = _zip(tmp_path / "moodle.zip", {
        f"Jane Doe_12345_assignsubmission_file_/{NAME}": lesson(),
        f"Bob Smith_23456_assignsubmission_file_/{NAME}": with_answers(lesson(), ex2_mean=WRONG_MEAN),
        f"Bob Smith_23456_assignsubmission_file_/copy of {NAME}": lesson(),  # two files for one lesson
    })
    out = tmp_path / "grades.csv"
    assert main(["grade", str(src), "--root", str(tmp_path), *LIMITS, "--out", str(out), "--export", "moodle"]) == 0
    sheet = _csv(tmp_path / f"grades-moodle-{STEM}.csv")
    assert list(sheet[0])[:6] == ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade"]
    got = {r["Identifier"]: (r["Full name"], r["Grade"], r["Maximum Grade"]) for r in sheet}
    assert got["Participant 12345"] == ("Jane Doe", "3", "3")
    assert got["Participant 23456"][0] == "Bob Smith" and got["Participant 23456"][1] in ("2", "3")
    second = [r for r in _csv(out) if r["student"] == "Bob Smith_23456" and r["status"] == "error"]
    assert len(second) == 1 and "a second file for this lesson" in second[0]["detail"]
