"""Audit a lesson's exercise checks with plausible wrong answers (``course audit NN``, and the test suite).

A learner on Colab sees only the visible checks, so each one must say ✗ to the wrong answers a
learner is likely to write, without printing the right one. ``tests/wrong_answers/NN_topic.toml``
lists such answers per answer cell::

    [[ex1-batchnorm]]                  # the grade_id of the answer cell
    why = "unbiased variance"          # what the mistake is
    code = '''
    def batchnorm2d_train(x, gamma, beta, eps=1e-5):
        ...
    '''
    hides = ["0.1234"]                 # optional: text the ✗ message must not contain (the answer)

One kernel run checks everything: the source lesson as ``course grade`` assembles it, with the last
wrong answer of each exercise in its answer cell. Before it, every other wrong answer runs followed
by the *visible* part of the test (the student copy's test cell); just before the graded test cell,
the visible part runs once more for the last wrong answer. Each visible run must fail with a ✗ line,
and each graded test cell must score 0 points. Every other cell must run, and since the rest of a
lesson never depends on the learner's answers, its recorded numbers must equal a normal run's.
"""
from __future__ import annotations

import asyncio
import copy
import os
import shutil
import tempfile
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as the tomli package (pyproject)
    import tomli as tomllib
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.utils import is_solution

from ...record import read_metrics
from .collect import Lesson, grade_id, load_lesson
from .grade import assemble, score
from .runner import Limits, kernel_env, run_notebook

__all__ = ["WrongAnswer", "AuditResult", "load_wrong_answers", "wrong_answers_path", "build_audit_notebook",
           "audit_lesson"]

_ROLE = "course_audit"


@dataclass(frozen=True)
class WrongAnswer:
    """One plausible wrong answer for an answer cell."""

    grade_id: str
    code: str
    why: str
    hides: tuple[str, ...] = ()


@dataclass
class AuditResult:
    """What the audit found: an empty ``problems`` list means every check held."""

    lesson: str
    problems: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0
    checked: int = 0  # wrong answers run through a visible check


def wrong_answers_path(lesson: Path) -> Path:
    """``<repo>/tests/wrong_answers/NN_topic.toml`` for ``<repo>/notebooks/NN_topic.ipynb``."""
    return lesson.resolve().parent.parent / "tests" / "wrong_answers" / f"{lesson.stem}.toml"


def load_wrong_answers(path: Path) -> dict[str, list[WrongAnswer]]:
    """Read a wrong-answers file: ``{answer grade_id: [WrongAnswer, ...]}``."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    out: dict[str, list[WrongAnswer]] = {}
    for gid, entries in data.items():
        if not isinstance(entries, list) or not entries:
            raise ValueError(f"{path}: [[{gid}]] must be a list of tables with 'code' and 'why'")
        for e in entries:
            if "code" not in e or "why" not in e:
                raise ValueError(f"{path}: an entry of [[{gid}]] lacks 'code' or 'why'")
            out.setdefault(gid, []).append(WrongAnswer(gid, e["code"].strip("\n"), e["why"], tuple(e.get("hides", ()))))
    return out


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
    visible = {grade_id(c): c.source for c in lesson.student.cells if grade_id(c) in lesson.auto}
    cells = []
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid in wrong and gid in pairs:
            for i, w in enumerate(wrong[gid][:-1]):
                cells += [_code_cell(w.code, "answer", gid, i), _code_cell(visible[pairs[gid]], "visible", gid, i)]
            cell.metadata[_ROLE] = {"role": "answer", "grade_id": gid, "variant": len(wrong[gid]) - 1}
        if gid in tested:
            answers = [a for a, t in pairs.items() if t == gid and a in wrong]
            cells.append(_code_cell(visible[gid], "visible", answers[-1], len(wrong[answers[-1]]) - 1))
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
    for cell, result in zip(run.nb.cells, run.cells):
        if cell.cell_type != "code":
            continue
        role = cell.metadata.get(_ROLE, {})
        gid = grade_id(cell)
        if role.get("role") == "answer":
            w = wrong[role["grade_id"]][role["variant"]]
            if result.status != "ok":
                res.problems.append(f"{w.grade_id}: the wrong answer '{w.why}' does not run "
                                    f"({result.status} {result.ename}: {result.evalue}); a plausible wrong answer should")
        elif role.get("role") == "visible":
            w = wrong[role["grade_id"]][role["variant"]]
            res.checked += 1
            crosses = [ln for ln in result.stdout.splitlines() if ln.startswith("✗")]
            if result.status != "error" or not crosses:
                res.problems.append(f"{w.grade_id}: the visible check says ✓ (or nothing) to the wrong answer '{w.why}'")
            shown = result.stdout + result.evalue
            for secret in w.hides:
                if secret in shown:
                    res.problems.append(f"{w.grade_id}: the visible check's message shows {secret!r} for '{w.why}'")
        elif gid in lesson.auto:
            if points.get(gid, 0) > 0:  # every answer is wrong (or the blank stub): no test may give points
                res.problems.append(f"{gid}: the grader gives {points[gid]:g} points to a wrong answer")
        elif not (gid and is_solution(cell)) and result.status != "ok":
            first = cell.source.strip().splitlines()[0][:60] if cell.source.strip() else ""
            res.problems.append(f"cell {first!r} fails with wrong answers in the exercises "
                                f"({result.status} {result.ename}: {result.evalue}): cells after an exercise "
                                "must not depend on the learner's answer")
    res.metrics, _ = read_metrics(run.nb)
    return res
