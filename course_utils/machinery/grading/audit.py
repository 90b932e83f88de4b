"""Audit a lesson's exercise checks with plausible wrong answers (``course audit NN``, and the test suite).

A learner on Colab sees only the visible checks, so each one must say ✗ to the wrong answers a
learner is likely to write, without printing the right one; and a ✓ is a promise: the grader then
gives full points. ``tests/wrong_answers/NN_topic.toml`` lists such answers per answer cell::

    [[ex1-batchnorm]]                  # the grade_id of the answer cell
    why = "unbiased variance"          # what the mistake is
    code = '''
    def batchnorm2d_train(x, gamma, beta, eps=1e-5):
        ...
    '''
    hides = ["0.1234"]                 # optional: text the ✗ message must not contain (the answer)
    fitted = true                      # optional: fitted to the visible inputs; the hidden block alone must catch it

One kernel run checks everything: the source lesson as ``course grade`` assembles it, with the last
wrong answer of each exercise in its answer cell. Just before each graded test cell, the lesson's own
solution and then every wrong answer run, each followed by three verdicts on it:

* the learner's notebook: the *visible* part of the test (the student copy's test cell);
* the hidden block alone: the full test cell with every expectation outside the hidden block made a
  no-op (:func:`.fresh.disarmed_outside_hidden`), so only the hidden inputs decide;
* the grader: the test cell exactly as ``course grade`` runs it (fresh check helpers), scored.

The grader's cell begins with the visible statements, so a wrong answer that the visible check
rejects scores 0 there as well: for such an answer the last two stop at a one-line guard (the hidden
block still runs for ``fitted`` answers), which keeps the audit within a few seconds of one check per
answer. Earlier exercises' solutions run first (an answer may call an earlier one).

The solution must get full points from the grader's cell, which starts with the visible statements
and holds the hidden block: that implies its visible ✓ and its hidden block's, which are not run
again for it. Every wrong answer must get a ✗ line from the visible
check and 0 points from the grader (a visible ✓ with fewer points is reported as such); the hidden
block alone must reject those marked ``fitted``. Then the answer cell of the last wrong answer runs
again and the graded cell in place must score 0 too. Every other cell must run, and since the rest of
a lesson never depends on the learner's answers, its recorded numbers must equal a normal run's.
"""
from __future__ import annotations

import asyncio
import copy
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.utils import is_solution

from ...record import read_metrics
from .collect import Lesson, grade_id, load_lesson
from .fresh import disarmed_outside_hidden, fresh_line, hidden_region, with_fresh_checks
from .grade import _score_cell, assemble, score
from .runner import Limits, kernel_env, run_notebook
from .wrong_answers import WrongAnswer, load_wrong_answers, wrong_answers_path

__all__ = ["WrongAnswer", "AuditResult", "load_wrong_answers", "wrong_answers_path", "build_audit_notebook",
           "audit_lesson"]

_ROLE = "course_audit"


@dataclass
class AuditResult:
    """What the audit found: an empty ``problems`` list means every check held."""

    lesson: str
    problems: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0
    checked: int = 0  # wrong answers run through all three verdicts (visible, hidden alone, grader)
    entries: int = 0  # wrong answers in the file
    solutions: int = 0  # solutions checked (✓, hidden ✓, full points)
    verdicts: dict = field(default_factory=dict)  # (grade_id, variant) -> {"visible": bool, "hidden": bool, "points": x}


def _answer_to_test(lesson: Lesson) -> dict[str, str]:
    """Each code answer cell's grade_id -> the grade_id of the autograded test cell after it."""
    pairs, pending = {}, []
    for cell in lesson.nb.cells:
        gid = grade_id(cell)
        if gid is None:
            continue
        if is_solution(cell) and cell.cell_type == "code":
            pending.append(gid)
        elif gid in lesson.auto:
            pairs.update({a: gid for a in pending})
            pending = []
    return pairs


def _code_cell(source: str, role: str, gid: str, variant: int) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(source, metadata={_ROLE: {"role": role, "grade_id": gid, "variant": variant}})


_SOLUTION = -1  # the variant number of the lesson's own solution


_SKIP = "course-audit: not run, the visible check already said ✗"
_GUARD = f"if not _cu_visible_ok: raise RuntimeError({_SKIP!r})\n"


def _verdicts(lesson: Lesson, test_id: str, answers: dict[str, str], gid: str, variant: int,
              fitted: bool = False) -> list:
    """Answer cells, then the three verdicts on them: visible check, hidden block alone, grader.

    The grader's test cell starts with the visible statements, so a wrong answer the visible check
    rejects scores 0 there too: for it the grader's cell (and the hidden block, unless the answer is
    ``fitted``) stop at a one-line guard instead of running the test again (the audit's time budget).
    """
    source = next(c.source for c in lesson.nb.cells if grade_id(c) == test_id)
    visible = next(c.source for c in lesson.student.cells if grade_id(c) == test_id)
    guard = "" if variant == _SOLUTION else _GUARD
    cells = [_code_cell(code, "answer", a, variant if a == gid else _SOLUTION) for a, code in answers.items()]
    if variant != _SOLUTION:  # the solution's full points imply its visible ✓: the grader's cell starts with it
        cells.append(_code_cell(f"_cu_visible_ok = False\n{visible}\n_cu_visible_ok = True", "visible", gid, variant))
    if hidden_region(source) and variant != _SOLUTION:  # the solution's full points imply its hidden ✓
        cells.append(_code_cell(("" if fitted else guard) + disarmed_outside_hidden(source), "hidden", gid, variant))
    cells.append(_code_cell(guard + with_fresh_checks(source), "graded", gid, variant))
    for cell in cells[-2:]:
        cell.metadata[_ROLE]["test"] = test_id
    if variant != _SOLUTION:  # an answer that replaced the check helpers must not spoil the next one's verdicts
        cells.append(_reset())
    return cells


def _reset() -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(fresh_line(note=False), metadata={_ROLE: {"role": "reset"}})


def _skipped(result) -> bool:
    return result.status == "error" and _SKIP in (result.evalue or "")


def build_audit_notebook(lesson: Lesson, wrong: dict[str, list[WrongAnswer]]) -> tuple[nbformat.NotebookNode, list[str]]:
    """The notebook the audit runs (see the module docstring) and the problems found before running it."""
    problems = []
    pairs = _answer_to_test(lesson)
    for gid in wrong:
        if gid not in pairs:
            problems.append(f"{gid}: no code answer cell with this grade_id is followed by an autograded test")
    tested = {pairs[g] for g in wrong if g in pairs}
    for test_id in lesson.auto:
        if test_id not in tested:
            problems.append(f"{test_id}: no wrong answer listed for its exercise (add one to the wrong-answers file)")
    submitted = copy.deepcopy(lesson.student)
    for cell in submitted.cells:
        if grade_id(cell) in wrong and grade_id(cell) in pairs:
            cell.source = wrong[grade_id(cell)][-1].code
    nb, _missing, _notes = assemble(lesson, submitted)
    solution = {grade_id(c): c.source for c in lesson.nb.cells if grade_id(c) in pairs}
    cells, earlier = [], []
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid in wrong and gid in pairs:
            cell.metadata[_ROLE] = {"role": "answer", "grade_id": gid, "variant": len(wrong[gid]) - 1}
        if gid in tested:
            answers = [a for a, t in pairs.items() if t == gid]
            # the last wrong answer ran just above (the submission as graded): fresh helpers, then
            # earlier exercises' solutions first: a later answer may use an earlier one (04: out_size)
            cells.append(_reset())
            cells += [_code_cell(solution[a], "answer", a, _SOLUTION) for a in earlier]
            right = {a: solution[a] for a in answers}
            cells += _verdicts(lesson, gid, right, answers[0], _SOLUTION)
            for a in (a for a in answers if a in wrong):
                for i, w in enumerate(wrong[a]):
                    cells += _verdicts(lesson, gid, {**right, a: w.code}, a, i, w.fitted)
            earlier += answers
            # the answers in place again (the last wrong ones), for the graded cell as `course grade` runs it
            cells += [_code_cell(c.source, "replay", grade_id(c), len(wrong[grade_id(c)]) - 1 if grade_id(c) in wrong
                                 else _SOLUTION) for c in nb.cells if grade_id(c) in earlier]
        cells.append(cell)
    nb.cells = cells
    return nb, problems


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link a generated data folder (cheap; the lessons only read it), copying where links fail."""
    def link(s, d):
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)
    shutil.copytree(src, dst, copy_function=link, dirs_exist_ok=True)


async def _run(nb, limits: Limits, data_from: Path | None):
    with tempfile.TemporaryDirectory(prefix="course-audit-") as tmp:
        root = Path(tmp)
        (root / "work").mkdir()
        if data_from is not None and (data_from / "shapes").is_dir():
            _link_tree(data_from / "shapes", root / "data" / "shapes")  # generated sets, not the weights cache
        return await run_notebook(nb, root / "work", limits, kernel_env(root))


def _judge(lesson: Lesson, wrong, role: dict, cell, result, res: AuditResult) -> None:
    """One verdict (visible check, hidden block alone, or grader) on the solution or one wrong answer."""
    kind, gid, variant = role["role"], role["grade_id"], role["variant"]
    accepted = result.status == "ok"
    if variant == _SOLUTION:
        if kind == "graded":
            res.solutions += 1
            got = _score_cell(cell, result, lesson.auto[role["test"]])[0]
            if got != lesson.auto[role["test"]]:
                res.problems.append(f"{role['test']}: the grader gives the lesson's solution {got:g} of "
                                    f"{lesson.auto[role['test']]:g} points ({result.ename}: {result.evalue})")
        elif not accepted:
            where = "the visible check" if kind == "visible" else "the hidden block alone"
            res.problems.append(f"{gid}: {where} rejects the lesson's solution ({result.ename}: {result.evalue})")
        return
    w = wrong[gid][variant]
    if kind == "visible":
        res.checked += 1
        res.verdicts.setdefault((gid, variant), {})["visible"] = accepted
        crosses = [ln for ln in result.stdout.splitlines() if ln.startswith("✗")]
        if accepted or not crosses:
            res.problems.append(f"{gid}: the visible check says ✓ (or nothing) to the wrong answer '{w.why}'")
        shown = result.stdout + result.evalue
        for secret in w.hides:
            if secret in shown:
                res.problems.append(f"{gid}: the visible check's message shows {secret!r} for '{w.why}'")
    elif kind == "hidden" and _skipped(result):
        res.verdicts.setdefault((gid, variant), {})["hidden"] = None  # not run: the visible check said ✗
    elif kind == "hidden":
        res.verdicts.setdefault((gid, variant), {})["hidden"] = accepted
        if accepted and w.fitted:
            res.problems.append(f"{gid}: the hidden block alone accepts '{w.why}', an answer fitted to the visible inputs")
    else:  # a skipped grader's cell scores 0 like any cell that raises: its visible statements already did
        got = _score_cell(cell, result, lesson.auto[role["test"]])[0]
        res.verdicts.setdefault((gid, variant), {})["points"] = got
        if got > 0:
            seen = res.verdicts[(gid, variant)].get("visible")
            res.problems.append(f"{gid}: the grader gives {got:g} points to the wrong answer '{w.why}'"
                                + (" (and the visible check said ✓)" if seen else ""))
        elif res.verdicts[(gid, variant)].get("visible"):
            res.problems.append(f"{gid}: the visible check says ✓ to '{w.why}', then the grader gives 0 points")


def audit_lesson(path: Path, wrong_file: Path | None = None, limits: Limits = Limits(),
                 data_from: Path | None = None) -> AuditResult:
    """Run the audit of one lesson (see the module docstring); ``data_from`` is a data cache to reuse."""
    lesson = load_lesson(path)
    wrong_file = wrong_file or wrong_answers_path(path)
    res = AuditResult(path.stem)
    if not wrong_file.exists():
        res.problems.append(f"no wrong answers for {path.name}: write {wrong_file}")
        return res
    wrong = load_wrong_answers(wrong_file)
    nb, res.problems = build_audit_notebook(lesson, wrong)
    run = asyncio.run(_run(nb, limits, data_from))
    res.seconds = run.seconds
    points, _lines = score(lesson, run, limits)
    res.entries = sum(len(v) for g, v in wrong.items())
    for cell, result in zip(run.nb.cells, run.cells):
        if cell.cell_type != "code":
            continue
        role = cell.metadata.get(_ROLE, {})
        if role.get("role") in ("visible", "hidden", "graded"):
            _judge(lesson, wrong, role, cell, result, res)
        elif role.get("role") in ("answer", "replay"):
            if result.status != "ok" and role["variant"] != _SOLUTION:
                w = wrong[role["grade_id"]][role["variant"]]
                res.problems.append(f"{w.grade_id}: the wrong answer '{w.why}' does not run "
                                    f"({result.status} {result.ename}: {result.evalue}); a plausible wrong answer should")
            elif result.status != "ok":
                res.problems.append(f"{role['grade_id']}: the lesson's solution does not run ({result.ename}: {result.evalue})")
        elif grade_id(cell) in lesson.auto:
            gid = grade_id(cell)
            if points.get(gid, 0) > 0:  # every answer is wrong (or the blank stub): no test may give points
                res.problems.append(f"{gid}: the grader gives {points[gid]:g} points to a wrong answer")
        elif not (grade_id(cell) and is_solution(cell)) and result.status != "ok":
            first = cell.source.strip().splitlines()[0][:60] if cell.source.strip() else ""
            res.problems.append(f"cell {first!r} fails with wrong answers in the exercises "
                                f"({result.status} {result.ename}: {result.evalue}): cells after an exercise "
                                "must not depend on the learner's answer")
    res.metrics, _ = read_metrics(run.nb)
    return res
