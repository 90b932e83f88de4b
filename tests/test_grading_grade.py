"""Batch grading of a class's submissions for one fixture lesson: right score and status for each kind of
submission (solution, blank, partial, wrong shape, tampered test, endless loop, os._exit, memory hog,
deleted cells, corrupt file, not a notebook, writes outside its folder), all in one run, none affecting
the others; the CSV resumes and re-grades only what changed."""
from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

import nbformat
import pytest

from course_utils.cli import main
from course_utils.grading.collect import load_lesson
from course_utils.grading.grade import assemble, grade_submissions
from course_utils.grading.runner import Limits
from course_utils.grading.sandbox import landlock_abi
from course_utils.grading.student import student_copy

sys.path.insert(0, str(Path(__file__).parent))
from fixtures.grading_lesson import MAX_POINTS, NAME, lesson, with_answers, without, write_lesson  # noqa: E402

# One worker runs the whole batch when tests are spread with `pytest -n 2 --dist loadgroup`.
pytestmark = pytest.mark.xdist_group("grading-batch")

# Generous for a loaded 2-core machine (the setup cell imports torch), small enough to keep the loop cheap.
LIMITS = Limits(cell_timeout=20, submission_timeout=90, memory_mb=6144)
FLAT = NAME  # submissions named <student>__98_grading_fixture.ipynb
WRONG_SHAPE = "def flip_h(x):\n    return x.reshape(x.shape[0], -1)"
# Sleeps instead of spinning so the shared test machine keeps its CPU; the grader cannot tell the difference.
LOOP = "def flip_h(x):\n    import time\n    while True:\n        time.sleep(0.01)"
CHEAT_TEST = 'print("✓ exercise 1: flip_h mirrors left-right")'

# student -> (expected total, expected status, expected ex1 points, expected ex2 points)
EXPECTED = {
    "alice": (3, "ok", 2, 1),  # the solution
    "bob": (0, "ok", 0, 0),  # the blank student copy
    "carol": (2, "ok", 2, 0),  # passes the visible check of ex2, fails the hidden one
    "dave": (1, "ok", 0, 1),  # wrong shape
    "erin": (1, "ok", 0, 1),  # wrong flip_h, test cell replaced by a fake ✓
    "frank": (1, "timeout", 0, 1),  # endless loop in flip_h
    "gina": (2, "error", 2, 0),  # os._exit(1) in the ex2 answer
    "hank": (2, "missing cells", 2, 0),  # deleted the ex1 test and the ex2 answer cell
    "ivan": (0, "error", 0, 0),  # corrupt .ipynb
    "judy": (0, "error", 0, 0),  # a PDF handed in for lesson 98
    "kim": (2, "ok", 2, 0),  # ex2 answer writes outside its folder
    "leo": (2, "ok", 2, 0),  # ex2 answer allocates 20 GiB
    "mia": (3, "ok", 2, 1),  # solution, file name without lesson number: found from its contents
    "nora": (0, "error", 0, 0),  # valid JSON, but its answer cells have no source
}


def _write_submissions(folder: Path, escape: Path) -> None:
    src = lesson()
    blank = student_copy(src)
    right_mean = "mean_value = img.mean().item()"
    folder.mkdir(parents=True)
    (folder / "bob").mkdir()

    def put(name: str, nb) -> None:
        nbformat.write(nb, folder / name)

    put(f"alice__{FLAT}", src)
    put(f"bob/{NAME}", blank)
    (folder / "bob" / "notes.txt").write_text("not a submission")
    put(f"carol__{FLAT}", with_answers(src, ex2_mean="mean_value = 0.0"))
    put(f"dave__{FLAT}", with_answers(blank, ex1_flip=WRONG_SHAPE, ex2_mean=right_mean))
    put(f"erin__{FLAT}", with_answers(blank, ex1_flip="def flip_h(x):\n    return x",
                                      ex1_flip_test=CHEAT_TEST, ex2_mean=right_mean))
    put(f"frank__{FLAT}", with_answers(blank, ex1_flip=LOOP, ex2_mean=right_mean))
    put(f"gina__{FLAT}", with_answers(src, ex2_mean="import os\nos._exit(1)"))
    put(f"hank__{FLAT}", without(src, "ex1-flip-test", "ex2-mean"))
    (folder / f"ivan__{FLAT}").write_text(nbformat.writes(src)[:300])
    (folder / "judy__98_grading_fixture.pdf").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    evil = (f"from pathlib import Path\n"
            f"Path({str(escape)!r}).write_text('escaped')\n"
            f"Path({str(folder / f'alice__{FLAT}')!r}).write_text('overwritten')\n"
            f"mean_value = img.mean().item()")
    put(f"kim__{FLAT}", with_answers(src, ex2_mean=evil))
    put(f"leo__{FLAT}", with_answers(src, ex2_mean="big = bytearray(20 * 2**30)\nmean_value = img.mean().item()"))
    put("mia.ipynb", src)
    broken = json.loads(nbformat.writes(src))
    for cell in broken["cells"]:
        cell.pop("source")
    (folder / f"nora__{FLAT}").write_text(json.dumps(broken))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("grading")
    source = write_lesson(root / "notebooks")
    subs, out, escape = root / "submissions", root / "out" / "grades.csv", root / "escaped.txt"
    _write_submissions(subs, escape)
    alice_bytes = (subs / f"alice__{FLAT}").read_bytes()
    t0 = time.perf_counter()
    rows = grade_submissions(subs, [source], out, limits=LIMITS, jobs=3, progress=False)
    wall = time.perf_counter() - t0
    print(f"\ngraded {len(rows)} submissions in {wall:.1f} s (jobs=3): "
          + ", ".join(f"{r['student']} {float(r['seconds']):.1f}s" for r in rows))
    return {"root": root, "source": source, "subs": subs, "out": out, "escape": escape, "rows": rows,
            "alice_bytes": alice_bytes, "wall": wall}


def _csv(path: Path) -> dict[str, dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return {r["student"]: r for r in csv.DictReader(f)}


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_each_submission_gets_its_score_and_status(graded, student):
    total, status, ex1, ex2 = EXPECTED[student]
    row = _csv(graded["out"])[student]
    assert (row["status"], float(row["total"])) == (status, total), row
    assert (float(row["ex1-flip-test"]), float(row["ex2-mean-test"])) == (ex1, ex2), row
    assert float(row["max"]) == MAX_POINTS and row["ex3-explain"] == "" and float(row["manual"]) == 1


def test_csv_has_one_row_per_submission_and_one_column_per_exercise(graded):
    with graded["out"].open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames[:6] == ["student", "lesson", "file", "status", "total", "max"]
    assert {"ex1-flip-test", "ex2-mean-test", "ex3-explain"} <= set(reader.fieldnames)
    assert sorted(r["student"] for r in rows) == sorted(EXPECTED)  # bob/notes.txt was skipped
    assert not list(graded["out"].parent.glob(".*.tmp")), "temp file of the atomic write left behind"


def test_feedback_says_which_checks_failed_and_why(graded):
    fb = graded["out"].parent / "grades-feedback"
    dave = (fb / f"dave__{FLAT[:-6]}.txt").read_text()
    assert "✗ ex1-flip-test  0/2: ✗ exercise 1: result should have shape (2, 4, 4), got (2, 16)" in dave
    assert "✓ ex2-mean-test  1/1" in dave
    carol = (fb / f"carol__{FLAT[:-6]}.txt").read_text()
    assert "mean_value differs from the expected values" in carol  # the hidden test's message
    assert "not done yet" in (fb / f"bob__{FLAT[:-6]}.txt").read_text()
    assert "stopped by the time limit (20 s per cell" in (fb / f"frank__{FLAT[:-6]}.txt").read_text()
    assert "kernel died" in (fb / f"gina__{FLAT[:-6]}.txt").read_text()
    assert "MemoryError" in (fb / f"leo__{FLAT[:-6]}.txt").read_text()
    assert "ex1-flip-test was edited; the original was used" in (fb / f"erin__{FLAT[:-6]}.txt").read_text()
    assert "Could not read your file" in (fb / "judy__98_grading_fixture.txt").read_text()
    assert "graded by hand" in dave


def test_executed_notebooks_are_kept_for_hand_grading(graded):
    nb = nbformat.read(graded["out"].parent / "grades-executed" / f"carol__{FLAT[:-6]}.ipynb", as_version=4)
    cells = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}
    assert cells["ex2-mean"].source == "mean_value = 0.0"  # her answer
    assert "BEGIN HIDDEN TESTS" in cells["ex2-mean-test"].source  # the source's test
    printed = "".join(o.get("text", "") for o in cells["ex1-flip-test"].outputs)
    assert printed == "✓ exercise 1: flip_h mirrors left-right\n"
    assert "mirrored place" in cells["ex3-explain"].source  # her explanation, to be read by hand


def test_endless_loop_is_stopped_within_the_limits(graded):
    frank = _csv(graded["out"])["frank"]
    # one timed-out cell plus one normal re-run; well inside the per-submission limit
    assert LIMITS.cell_timeout <= float(frank["seconds"]) < LIMITS.submission_timeout


@pytest.mark.skipif(landlock_abi() < 1, reason="Landlock is not available: writes cannot be confined here")
def test_writes_outside_the_temp_dir_are_refused_and_harm_no_one(graded):
    assert not graded["escape"].exists()
    assert (graded["subs"] / f"alice__{FLAT}").read_bytes() == graded["alice_bytes"]
    assert "PermissionError" in (graded["out"].parent / "grades-feedback" / f"kim__{FLAT[:-6]}.txt").read_text()


def test_rerun_regrades_only_what_changed(graded, monkeypatch, capsys):
    import course_utils.grading.grade as grade_mod

    out, subs = graded["out"], graded["subs"]
    before = out.read_text()
    calls = []
    real = grade_mod._grade_one

    async def counting(sub, *args):
        calls.append(sub.student)
        return await real(sub, *args)

    monkeypatch.setattr(grade_mod, "_grade_one", counting)
    cli = ["grade", str(subs), "--out", str(out), "--quiet", "--cell-timeout", str(LIMITS.cell_timeout),
           "--timeout", str(LIMITS.submission_timeout), "--memory-mb", str(LIMITS.memory_mb),
           "--root", str(graded["root"])]
    assert main(cli) == 0
    assert calls == [] and out.read_text() == before
    assert f"{len(EXPECTED)} submissions graded" in capsys.readouterr().out
    # carol fixes ex2: only her row is graded again and changes
    nbformat.write(with_answers(lesson(), ex2_mean="mean_value = img.mean().item()"), subs / f"carol__{FLAT}")
    assert main([*cli, "--lesson", "98"]) == 0
    assert calls == ["carol"]
    after, old = _csv(out), {r["student"]: r for r in csv.DictReader(before.splitlines())}
    assert float(after["carol"]["total"]) == 3
    assert {s for s in after if after[s] != old[s]} == {"carol"}


def test_assemble_takes_tests_from_the_source_and_answers_from_the_submission():
    les = load_lesson_from(lesson())
    tampered = with_answers(student_copy(lesson()), ex1_flip="def flip_h(x):\n    return x", ex1_flip_test="pass")
    nb, missing, notes = assemble(les, tampered)
    cells = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells if "nbgrader" in c.metadata}
    assert cells["ex1-flip"] == "def flip_h(x):\n    return x"
    assert "BEGIN HIDDEN TESTS" in cells["ex1-flip-test"]  # the source's test, hidden part included
    assert missing == [] and notes == ["ex1-flip-test was edited; the original was used"]
    nb, missing, _ = assemble(les, without(lesson(), "ex2-mean", "ex3-explain"))
    assert missing == ["ex2-mean", "ex3-explain"]
    assert "raise NotImplementedError" in nb.cells[10].source  # the stub stands in for the deleted answer
    assert len(nb.cells) == len(lesson().cells)


def load_lesson_from(nb):
    import tempfile
    folder = Path(tempfile.mkdtemp(prefix="lesson-"))
    nbformat.write(nb, folder / NAME)
    return load_lesson(folder / NAME)
