"""The class report from a made-up grades CSV and feedback files: per-exercise mean, spread and share of full
marks against hand-computed values, the most frequent first failing message, per-student lines, files not
graded, and a figure in both the HTML and the Markdown."""
from __future__ import annotations

from pathlib import Path

from course_utils.machinery.grading.classreport import parse_feedback, write_report
from course_utils.machinery.grading.export import write_roster
from course_utils.machinery.grading.sheet import write_rows

FEEDBACK = {
    "ann": "✓ ex1  2/2\n✓ ex2  1/1\n· ex3  ?/1: graded by hand\n",
    "bob": "✗ ex1  0/2: ✗ exercise 1: flip_h must mirror the last axis / ✗ exercise 1: shape\n✓ ex2  1/1\n",
    "cy": "✗ ex1  1/2: ✗ exercise 1: flip_h must mirror the last axis\n✗ ex2  0/1: NameError: name 'm' is not defined\n",
    "dee": "✗ ex1  0/2: ✗ exercise 1: the dtype must stay float32\n✓ ex2  1/1\n",
}


def test_parse_feedback_reads_points_and_the_first_failing_check():
    assert parse_feedback(FEEDBACK["bob"]) == [("ex1", 0.0, 2.0, "✗ exercise 1: flip_h must mirror the last axis"),
                                               ("ex2", 1.0, 1.0, "")]


def test_report_numbers_against_hand_computed_values(tmp_path: Path):
    out = tmp_path / "grades.csv"
    fb = tmp_path / "grades-feedback"
    fb.mkdir()
    rows = []
    for s, text in FEEDBACK.items():
        (fb / f"{s}.txt").write_text(text)
        pts = {g: p for g, p, _, _ in parse_feedback(text)}
        rows.append({"student": s, "lesson": "98_x", "file": f"{s}.ipynb", "status": "ok",
                     "total": sum(pts.values()), "max": 3, **pts, "feedback": f"{s}.txt", "detail": ""})
    rows.append({"student": "eve", "lesson": "98_x", "file": "eve.pdf", "status": "error", "total": 0, "max": "",
                 "feedback": "", "detail": "not a notebook (.pdf)"})
    write_rows(out, rows, ["ex1", "ex2"])
    write_roster(out, {"bob": {"lms": "canvas", "id": "1", "name": "bob", "late": True}})
    html, md = write_report(out, tmp_path / "r" / "report")
    text = md.read_text()
    # ex1: points 2, 0, 1, 0 -> mean 0.75, population sd sqrt(((1.25)^2 + 3 * ...)/4) = 0.83, 1 of 4 full
    assert "| ex1 | 2 | 0.75 | 0.83 | 25% | ✗ exercise 1: flip_h must mirror the last axis (2×) |" in text
    assert "| ex2 | 1 | 0.75 | 0.43 | 75% | NameError: name 'm' is not defined (1×) |" in text
    assert text.index("| ex1 |") < text.index("| ex2 |")  # hardest first
    assert "- bob · 1/3 · ok · late · lost: ex1 0/2" in text and "- ann · 3/3 · ok · full marks" in text
    assert "- eve · eve.pdf: not a notebook (.pdf)" in text
    assert "4 graded, 1 not graded; mean 1.50 of 3" in text
    assert "![98_x](report-98_x.png)" in text and (tmp_path / "r" / "report-98_x.png").stat().st_size > 5000
    assert html.read_text().count("data:image/png;base64,") == 1
