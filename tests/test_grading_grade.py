"""Batch grading of a class's submissions for two fixture lessons: the right rows, scores, statuses and files
for each kind of submission, all in one run, none affecting the others: solution, blank, partial, wrong
shape, tampered test, endless loop, os._exit, exit(), memory hog, output flood, deleted cells, corrupt file,
not a notebook, writes outside its folder, a test result that is not a score, names that collide once
made file-safe, names a spreadsheet would run as formulas. The CSV resumes, re-grades only what changed,
and keeps the rows a run does not grade (another lesson's, the same file under another lesson)."""
from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

import nbformat
import pytest

from course_utils.machinery.cli import main
from course_utils.machinery.grading.collect import load_lesson
from course_utils.machinery.grading.grade import _score_cell, assemble, grade_submissions, read_grades
from course_utils.machinery.grading.runner import CellResult, Limits
from course_utils.machinery.grading.sandbox import landlock_abi
from course_utils.machinery.grading.sheet import FIXED, TAIL
from course_utils.machinery.grading.student import student_copy

sys.path.insert(0, str(Path(__file__).parent))
from fixtures.grading_lesson import (  # noqa: E402
    MAX_POINTS, NAME, OTHER, lesson, other_lesson, with_answers, without, write_lesson)

# One worker runs the whole batch when tests are spread with `pytest -n 2 --dist loadgroup`.
pytestmark = pytest.mark.xdist_group("grading-batch")

# Generous for a loaded 2-core machine (the setup cell imports torch), small enough to keep the loop cheap.
# The device is the grader's default (cpu), set by kernel_env whatever this machine has.
LIMITS = Limits(cell_timeout=20, submission_timeout=90, memory_mb=6144)
FLAT = NAME  # submissions named <student>__98_grading_fixture.ipynb
STEM = NAME[:-6]
L97 = OTHER[:-6]
WRONG_SHAPE = "def flip_h(x):\n    return x.reshape(x.shape[0], -1)"
RIGHT_FLIP = "def flip_h(x):\n    return torch.flip(x, dims=[-1])"
RIGHT_MEAN = "mean_value = img.mean().item()"
# Sleeps instead of spinning so the shared test machine keeps its CPU; the grader cannot tell the difference.
LOOP = "def flip_h(x):\n    import time\n    while True:\n        time.sleep(0.01)"
CHEAT_TEST = 'print("✓ exercise 1: flip_h mirrors left-right")'
# An IPython input transformer makes the next test cells end in a value: more than the points, then text.
SCORE_99 = RIGHT_FLIP + '\nget_ipython().input_transformers_post.append(lambda lines: lines + ["\\n", "99\\n"])'
SCORE_ABC = RIGHT_MEAN + '\nget_ipython().input_transformers_post[:] = [lambda lines: lines + ["\\n", "\'abc\'\\n"]]'
FLOOD = 'for i in range(6000):\n    print("flood " * 200)\n' + RIGHT_MEAN  # ~7 MB printed, then the answer
LANDLOCK = landlock_abi() >= 1

# file -> (lesson, expected total, status, points of exercise 1, points of exercise 2)
EXPECTED = {
    f"alice__{FLAT}": (STEM, 3, "ok", 2, 1),  # the solution
    f"bob/{NAME}": (STEM, 0, "ok", 0, 0),  # the blank student copy
    f"bob__{FLAT}": (STEM, 1, "ok", 0, 1),  # wrong shape; same student, same file-safe name as bob/
    "bob__98_grading_fixture.pdf": (STEM, 0, "error", 0, 0),  # a PDF handed in: the same name once more
    f"=carol__{FLAT}": (STEM, 2, "ok", 2, 0),  # passes the visible check of ex2, fails the hidden one
    f"+erin__{FLAT}": (STEM, 1, "ok", 0, 1),  # wrong flip_h, test cell replaced by a fake ✓
    f"-frank__{FLAT}": (STEM, 1, "timeout", 0, 1),  # endless loop in flip_h
    f"@gina__{FLAT}": (STEM, 2, "error", 2, 0),  # os._exit(1) in the ex2 answer
    f"leo_ng__{FLAT}": (STEM, 2, "missing cells", 2, 0),  # deleted the ex1 test and the ex2 answer cell
    f"ivan__{FLAT}": (STEM, 0, "error", 0, 0),  # corrupt .ipynb
    f"kim__{FLAT}": (STEM, 2, "ok", 2, 0),  # ex2 answer writes outside its folder (only where Landlock works)
    f"leo ng__{FLAT}": (STEM, 2, "ok", 2, 0),  # ex2 answer allocates 20 GiB; "leo ng" and "leo_ng" differ
    "mia.ipynb": (STEM, 3, "ok", 2, 1),  # solution, file name without lesson number: found from its contents
    f"nora__{FLAT}": (STEM, 0, "error", 0, 0),  # valid JSON, but its answer cells have no source
    f"olga__{FLAT}": (STEM, 0, "error", 0, 0),  # test results 99 (> 2 points) and 'abc'
    f"paul__{FLAT}": (STEM, 3, "ok", 2, 1),  # right answers after printing ~7 MB
    f"quinn__{FLAT}": (STEM, 1, "error", 0, 1),  # exit() at the end of the ex1 answer
    f"rita__{OTHER}": (L97, 3, "ok", 2, 1),  # lesson 97's solution: two lessons in one CSV
    "xavier.ipynb": ("", 0, "error", None, None),  # not a notebook, no lesson number: which lesson is it?
}
if not LANDLOCK:  # without Landlock kim's answer would really overwrite alice's file and spoil the other tests;
    del EXPECTED[f"kim__{FLAT}"]  # test_writes_outside_the_temp_dir_... is skipped, saying why


def _write_submissions(folder: Path, escape: Path) -> None:
    src = lesson()
    blank = student_copy(src)
    folder.mkdir(parents=True)
    (folder / "bob").mkdir()

    def put(name: str, nb) -> None:
        nbformat.write(nb, folder / name)

    put(f"alice__{FLAT}", src)
    put(f"bob/{NAME}", blank)
    (folder / "bob" / "notes.txt").write_text("not a submission")
    put(f"bob__{FLAT}", with_answers(blank, ex1_flip=WRONG_SHAPE, ex2_mean=RIGHT_MEAN))
    (folder / "bob__98_grading_fixture.pdf").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    put(f"=carol__{FLAT}", with_answers(src, ex2_mean="mean_value = 0.0"))
    put(f"+erin__{FLAT}", with_answers(blank, ex1_flip="def flip_h(x):\n    return x",
                                       ex1_flip_test=CHEAT_TEST, ex2_mean=RIGHT_MEAN))
    put(f"-frank__{FLAT}", with_answers(blank, ex1_flip=LOOP, ex2_mean=RIGHT_MEAN))
    put(f"@gina__{FLAT}", with_answers(src, ex2_mean="import os\nos._exit(1)"))
    put(f"leo_ng__{FLAT}", without(src, "ex1-flip-test", "ex2-mean"))
    (folder / f"ivan__{FLAT}").write_text(nbformat.writes(src)[:300])
    if LANDLOCK:
        evil = (f"from pathlib import Path\n"
                f"Path({str(escape)!r}).write_text('escaped')\n"
                f"Path({str(folder / f'alice__{FLAT}')!r}).write_text('overwritten')\n"
                f"mean_value = img.mean().item()")
        put(f"kim__{FLAT}", with_answers(src, ex2_mean=evil))
    put(f"leo ng__{FLAT}", with_answers(src, ex2_mean="big = bytearray(20 * 2**30)\nmean_value = img.mean().item()"))
    put("mia.ipynb", src)
    broken = json.loads(nbformat.writes(src))
    for cell in broken["cells"]:
        cell.pop("source")
    (folder / f"nora__{FLAT}").write_text(json.dumps(broken))
    put(f"olga__{FLAT}", with_answers(src, ex1_flip=SCORE_99, ex2_mean=SCORE_ABC))
    put(f"paul__{FLAT}", with_answers(src, ex2_mean=FLOOD))
    put(f"quinn__{FLAT}", with_answers(src, ex1_flip=RIGHT_FLIP + "\nexit()"))
    put(f"rita__{OTHER}", other_lesson())
    (folder / "xavier.ipynb").write_text("garbage")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("grading")
    sources = [write_lesson(root / "notebooks"), write_lesson(root / "notebooks", other=True)]
    subs, out, escape = root / "submissions", root / "out" / "grades.csv", root / "escaped.txt"
    _write_submissions(subs, escape)
    alice_bytes = (subs / f"alice__{FLAT}").read_bytes()
    t0 = time.perf_counter()
    rows = grade_submissions(subs, sources, out, limits=LIMITS, jobs=3, progress=False)
    wall = time.perf_counter() - t0
    print(f"\ngraded {len(rows)} submissions in {wall:.1f} s (jobs=3): "
          + ", ".join(f"{r['student']} {float(r['seconds']):.1f}s" for r in rows))
    return {"root": root, "subs": subs, "out": out, "escape": escape, "rows": rows,
            "alice_bytes": alice_bytes, "wall": wall}


def _csv(path: Path) -> dict[str, dict]:
    """Lesson 98's rows by file, as a spreadsheet would read them (no un-escaping)."""
    with path.open(newline="", encoding="utf-8") as f:
        return {r["file"].removeprefix("'"): r for r in csv.DictReader(f) if r["lesson"] == STEM}


def _rows(path: Path) -> dict[str, dict]:
    """Rows by file, read back as the grader does (lesson 97's row of mia.ipynb left out)."""
    return {k[2]: r for k, r in read_grades(path).items() if not (k[2] == "mia.ipynb" and k[1] == L97)}


def _feedback(graded, file: str) -> str:
    return (graded["out"].parent / "grades-feedback" / _rows(graded["out"])[file]["feedback"]).read_text()


@pytest.mark.parametrize("file", sorted(EXPECTED))
def test_each_submission_gets_its_score_and_status(graded, file):
    les, total, status, ex1, ex2 = EXPECTED[file]
    row = _rows(graded["out"])[file]
    prefix = "l97-" if les == L97 else ""
    assert (row["lesson"], row["status"], float(row["total"])) == (les, status, total), row
    if not les:
        assert "cannot tell which lesson this is" in row["detail"] and row["max"] == ""
        return
    assert (float(row[f"{prefix}ex1-flip-test"]), float(row[f"{prefix}ex2-mean-test"])) == (ex1, ex2), row
    assert float(row["max"]) == MAX_POINTS and row[f"{prefix}ex3-explain"] == "" and float(row["manual"]) == 1


def test_csv_has_one_row_per_submission_and_the_columns_of_both_lessons(graded):
    with graded["out"].open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    ids = ["ex1-flip-test", "ex2-mean-test", "ex3-explain"]
    assert reader.fieldnames == [*FIXED, *(f"l97-{c}" for c in ids), *ids, *TAIL]  # lesson 97's first
    assert sorted(r["file"].removeprefix("'") for r in rows) == sorted(EXPECTED)  # bob/notes.txt was skipped
    assert not list(graded["out"].parent.glob(".*.tmp")), "temp file of the atomic write left behind"


def test_names_that_look_like_formulas_are_written_so_a_spreadsheet_shows_them(graded):
    with graded["out"].open(newline="", encoding="utf-8") as f:
        fields = [field for line in csv.reader(f) for field in line]
    assert not [v for v in fields if v.startswith(("=", "+", "-", "@", "\t", "\r"))]
    raw = _csv(graded["out"])
    assert [raw[f"{n}__{FLAT}"]["student"] for n in ("=carol", "+erin", "-frank", "@gina")] == [
        "'=carol", "'+erin", "'-frank", "'@gina"]
    assert raw[f"=carol__{FLAT}"]["file"] == f"'=carol__{FLAT}"
    back = _rows(graded["out"])  # the grader reads them back as they were
    assert [back[f"{n}__{FLAT}"]["student"] for n in ("=carol", "+erin", "-frank", "@gina")] == [
        "=carol", "+erin", "-frank", "@gina"]
    assert "=carol - 98_grading_fixture" in _feedback(graded, f"=carol__{FLAT}")


def test_colliding_names_get_their_own_feedback_and_executed_notebook(graded):
    rows = _rows(graded["out"])
    fb, ex = graded["out"].parent / "grades-feedback", graded["out"].parent / "grades-executed"
    names = [r["feedback"] for r in read_grades(graded["out"]).values()]
    assert len(set(names)) == len(names) == len(EXPECTED) and sorted(p.name for p in fb.iterdir()) == sorted(names)
    assert "score 0 / 3" in _feedback(graded, f"bob/{NAME}")
    assert "result should have shape (2, 4, 4), got (2, 16)" in _feedback(graded, f"bob__{FLAT}")
    assert "Could not read your file" in _feedback(graded, "bob__98_grading_fixture.pdf")
    assert "MemoryError" in _feedback(graded, f"leo ng__{FLAT}")
    assert "missing cells: ex1-flip-test, ex2-mean" in _feedback(graded, f"leo_ng__{FLAT}")
    answers = {}
    for file in (f"bob/{NAME}", f"bob__{FLAT}"):
        nb = nbformat.read(ex / (rows[file]["feedback"][:-4] + ".ipynb"), as_version=4)
        answers[file] = next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex1-flip")
    assert "NotImplementedError" in answers[f"bob/{NAME}"] and answers[f"bob__{FLAT}"] == WRONG_SHAPE


def test_feedback_says_which_checks_failed_and_why(graded):
    bob = _feedback(graded, f"bob__{FLAT}")
    assert "✗ ex1-flip-test  0/2: ✗ exercise 1: result should have shape (2, 4, 4), got (2, 16)" in bob
    assert "✓ ex2-mean-test  1/1" in bob and "graded by hand" in bob
    assert "mean_value differs from the expected values" in _feedback(graded, f"=carol__{FLAT}")  # hidden test
    assert "not done yet" in _feedback(graded, f"bob/{NAME}")
    assert "stopped by the time limit (20 s per cell" in _feedback(graded, f"-frank__{FLAT}")
    assert "kernel died" in _feedback(graded, f"@gina__{FLAT}")
    assert "ex1-flip-test was edited; the original was used" in _feedback(graded, f"+erin__{FLAT}")


def test_a_result_that_is_not_a_score_is_an_error_of_that_row_only(graded):
    olga = _rows(graded["out"])[f"olga__{FLAT}"]
    assert "ex1-flip-test: its result '99' is not a score between 0 and 2" in olga["detail"]
    assert "ex2-mean-test: its result \"'abc'\" is not a score between 0 and 1" in olga["detail"]
    assert "✗ ex1-flip-test  0/2: its result '99'" in _feedback(graded, f"olga__{FLAT}")


def test_output_flood_is_cut_and_said_so(graded):
    paul = _rows(graded["out"])[f"paul__{FLAT}"]
    assert "output of ex2-mean was cut: the grader keeps 1 MB of printed text" in paul["detail"]
    assert "output of ex2-mean was cut" in _feedback(graded, f"paul__{FLAT}")
    nb = nbformat.read(graded["out"].parent / "grades-executed" / (paul["feedback"][:-4] + ".ipynb"), as_version=4)
    answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex2-mean")
    printed = "".join(o.get("text", "") for o in answer.outputs if o.output_type == "stream" and o.name == "stdout")
    assert len(printed) == 2**20 and printed.startswith("flood flood")
    assert "[course grade: output dropped here" in answer.outputs[-1].text


def test_exit_is_blamed_on_the_cell_that_called_it(graded):
    quinn = _feedback(graded, f"quinn__{FLAT}")
    assert "! answer cell ex1-flip: this cell called exit() or quit()" in quinn
    assert "✗ ex1-flip-test  0/2: ✗ exercise 1: name 'flip_h' is not defined" in quinn  # it ran, without flip_h
    assert "✓ ex2-mean-test  1/1" in quinn
    assert "ex1-flip called exit() or quit(), which stops the kernel" in _rows(graded["out"])[f"quinn__{FLAT}"]["detail"]


def test_executed_notebooks_are_kept_for_hand_grading(graded):
    carol = _rows(graded["out"])[f"=carol__{FLAT}"]
    nb = nbformat.read(graded["out"].parent / "grades-executed" / (carol["feedback"][:-4] + ".ipynb"), as_version=4)
    cells = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}
    assert cells["ex2-mean"].source == "mean_value = 0.0"  # her answer
    assert "BEGIN HIDDEN TESTS" in cells["ex2-mean-test"].source  # the source's test
    printed = "".join(o.get("text", "") for o in cells["ex1-flip-test"].outputs)
    assert printed == "✓ exercise 1: flip_h mirrors left-right\n"
    assert "mirrored place" in cells["ex3-explain"].source  # her explanation, to be read by hand


def test_endless_loop_is_stopped_within_the_limits(graded):
    frank = _rows(graded["out"])[f"-frank__{FLAT}"]
    # one timed-out cell plus one normal re-run; well inside the per-submission limit
    assert LIMITS.cell_timeout <= float(frank["seconds"]) < LIMITS.submission_timeout


@pytest.mark.skipif(not LANDLOCK, reason="Landlock is not available on this kernel: writes cannot be confined here")
def test_writes_outside_the_temp_dir_are_refused_and_harm_no_one(graded):
    assert not graded["escape"].exists()
    assert (graded["subs"] / f"alice__{FLAT}").read_bytes() == graded["alice_bytes"]
    assert "PermissionError" in _feedback(graded, f"kim__{FLAT}")


def test_rerun_regrades_only_what_changed_and_keeps_every_other_row(graded, monkeypatch, capsys):
    import course_utils.machinery.grading.grade as grade_mod

    out, subs = graded["out"], graded["subs"]
    before = read_grades(out)
    calls = []
    real = grade_mod._grade_one

    async def counting(sub, *args):
        calls.append(sub.rel)
        return await real(sub, *args)

    monkeypatch.setattr(grade_mod, "_grade_one", counting)
    cli = ["grade", str(subs), "--out", str(out), "--quiet", "--cell-timeout", str(LIMITS.cell_timeout),
           "--timeout", str(LIMITS.submission_timeout), "--memory-mb", str(LIMITS.memory_mb),
           "--root", str(graded["root"])]
    # Nothing changed but the PDF's feedback file is gone: only the PDF is graded again, not the
    # notebooks whose file-safe names are the same as its name.
    pdf_feedback = out.parent / "grades-feedback" / _rows(out)["bob__98_grading_fixture.pdf"]["feedback"]
    pdf_feedback.unlink()
    assert main(cli) == 0
    assert calls == ["bob__98_grading_fixture.pdf"] and read_grades(out) == before and pdf_feedback.exists()
    assert f"{len(EXPECTED)} submissions graded" in capsys.readouterr().out
    # carol fixes ex2, then lesson 98 alone is graded: only her row changes, lesson 97's row stays; xavier's
    # file has no lesson number, so it is graded against lesson 98 and that row replaces his "which lesson?" row
    calls.clear()
    nbformat.write(with_answers(lesson(), ex2_mean=RIGHT_MEAN), subs / f"=carol__{FLAT}")
    assert main([*cli, "--lesson", "98"]) == 0
    after = read_grades(out)
    carol, xavier = ("=carol", STEM, f"=carol__{FLAT}"), ("xavier", "", "xavier.ipynb")
    assert sorted(calls) == [f"=carol__{FLAT}", "xavier.ipynb"] and float(after[carol]["total"]) == 3
    assert set(after) == set(before) - {xavier} | {("xavier", STEM, "xavier.ipynb")}
    assert {k for k in before if k != xavier and after[k] != before[k]} == {carol}
    assert "not a readable notebook" in after[("xavier", STEM, "xavier.ipynb")]["detail"]
    # lesson 97 alone: mia.ipynb, which has no lesson number, gets a row of its own for lesson 97 (its cells
    # are lesson 98's, so they are all missing), and so does xavier's; every other row stays as it was
    calls.clear()
    assert main([*cli, "--lesson", "97"]) == 0
    final = read_grades(out)
    assert sorted(calls) == ["mia.ipynb", "xavier.ipynb"]
    assert set(final) == set(after) | {("mia", L97, "mia.ipynb"), ("xavier", L97, "xavier.ipynb")}
    assert all(final[k] == after[k] for k in after)
    mia97 = final[("mia", L97, "mia.ipynb")]
    assert (mia97["status"], float(mia97["total"])) == ("missing cells", 0)
    assert mia97["feedback"] != final[("mia", STEM, "mia.ipynb")]["feedback"]
    assert (out.parent / "grades-feedback" / mia97["feedback"]).exists()


@pytest.mark.parametrize("text, points, expected", [
    ("1.5", 2, (1.5, "")), ("0", 2, (0, "")), ("2", 2, (2, "")),
    ("99", 2, (0, "its result '99' is not a score between 0 and 2")),
    ("-1", 2, (0, "its result '-1' is not a score between 0 and 2")),
    ("nan", 2, (0, "its result 'nan' is not a score between 0 and 2")),
    ("'abc'", 1, (0, "its result \"'abc'\" is not a score between 0 and 1")),
])
def test_a_test_cell_result_scores_only_when_it_is_a_number_within_the_points(text, points, expected):
    cell = nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output("execute_result", data={"text/plain": text},
                                                                           execution_count=1)])
    assert _score_cell(cell, CellResult("ok"), points) == expected
    assert _score_cell(cell, CellResult("error"), points) == (0, "")
    assert _score_cell(nbformat.v4.new_code_cell("x"), CellResult("ok"), points) == (points, "")


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


def test_assembled_test_cells_start_with_fresh_check_helpers():
    """An answer that rebinds `expect` or patches course_utils.checks changes nothing: every graded test cell
    loads the helpers again from the grader's copy (the audit's meta-tests run such an answer)."""
    from course_utils.machinery.grading.fresh import FRESH_MARK

    les = load_lesson_from(lesson())
    nb, _, _ = assemble(les, student_copy(lesson()))
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        first = cell.source.splitlines()[0] if cell.source else ""
        assert first.endswith(FRESH_MARK) == (gid in les.auto), gid
    ns: dict = {}
    import course_utils.checks as original
    exec(nb.cells[6].source.splitlines()[0], ns)
    assert ns["expect"] is not original.expect and ns["expect"].__module__ == "course_utils.checks"
    import sys as _sys
    _sys.modules["course_utils.checks"] = original  # undo what the fresh line did in this process
    import course_utils
    course_utils.checks = original
