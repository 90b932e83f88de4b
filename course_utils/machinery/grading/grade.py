"""Grade a folder of submitted notebooks offline (``course grade``): one CSV row and one feedback file each.

For each submission the grader builds the notebook it runs from the *source* lesson: every cell is the
lesson's own (tests with their hidden part, setup, prose), except that each solution cell's content is
taken from the submission's cell with the same nbgrader ``grade_id``. A solution cell the learner
deleted gets the student stub back; a deleted or edited test cell changes nothing, and each test cell starts with fresh check helpers
(:mod:`.fresh`), so an answer that rebinds ``expect`` or patches ``course_utils.checks`` changes nothing either. Cells the learner
added are not run: everything that should be graded goes in the answer cells.

Which files are submissions, and of which lesson, is :mod:`course_utils.machinery.grading.collect`'s job; the
CSV (rows keyed by student, lesson and file, kept across runs) is :mod:`course_utils.machinery.grading.sheet`'s.
Scores follow nbgrader's rules (a test cell that raises scores 0, a numeric result gives partial
credit) except that warnings printed to stderr do not cost the points, and a result that is not a
number between 0 and the cell's points (nbgrader gives full marks for text and crashes on a number
above the points) scores 0 and makes the row's status ``error``. Anything that goes wrong with one
submission, after its run too, becomes that row's ``error`` with a detail; the others are graded on.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath

import nbformat
from nbgrader.utils import is_solution

from . import zygote
from .fresh import with_fresh_checks
from .preload import preload_for
from .collect import Lesson, Submission, find_submissions, grade_id as _gid, load_lesson
from .runner import Limits, RunResult, kernel_env, run_notebook
from .sheet import Key, key, merge_columns, read_rows, write_rows

__all__ = ["assemble", "score", "feedback_name", "grade_submissions", "read_grades"]

_WORK_FILES_MB = 200


def assemble(lesson: Lesson, submitted: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, list[str], list[str]]:
    """The notebook to run: the lesson with the submission's answers. Returns (nb, missing ids, notes)."""
    theirs: dict[str, object] = {}
    for cell in submitted.cells:
        gid = _gid(cell)
        if gid and gid not in theirs:
            theirs[gid] = cell
    stubs = {_gid(c): c for c in lesson.student.cells if _gid(c)}
    nb = nbformat.from_dict(json.loads(json.dumps(lesson.nb)))
    nb.cells = []
    missing, notes = [], []
    for cell in lesson.nb.cells:
        gid = _gid(cell)
        new = nbformat.from_dict(json.loads(json.dumps(cell)))
        if new.cell_type == "code":
            new.outputs, new.execution_count = [], None
        if gid is not None and gid not in theirs:
            missing.append(gid)
        if gid is not None and is_solution(cell):
            new.source = theirs[gid].source if gid in theirs else stubs[gid].source
        elif gid is not None and gid in theirs and theirs[gid].source not in (stubs[gid].source, cell.source):
            notes.append(f"{gid} was edited; the original was used")
        if gid in lesson.auto:
            new.source = with_fresh_checks(cell.source)  # an answer that rebinds the helpers changes nothing
        nb.cells.append(new)
    return nb, missing, notes


def _score_cell(cell, result, points: float) -> tuple[float, str]:
    """Points of an executed test cell, and what was wrong with its result ("" if nothing)."""
    if result.status != "ok":
        return 0.0, ""
    for out in cell.outputs:
        if out.output_type == "execute_result" and "text/plain" in out.get("data", {}):
            text = out.data["text/plain"]
            text = "".join(text) if isinstance(text, list) else str(text)
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not 0 <= value <= points:  # NaN too
                return 0.0, f"its result {text[:40]!r} is not a score between 0 and {points:g}"
            return value, ""
    return points, ""


def _why(result, limits: Limits) -> str:
    checks = [ln for ln in result.stdout.splitlines() if ln.startswith(("✓", "✗"))]
    if result.status == "error":
        return " / ".join(ln for ln in checks if ln.startswith("✗")) or f"{result.ename}: {result.evalue}"[:300]
    if result.status == "died" and result.ename == "exit":
        return "this cell called exit() or quit(), which stops the kernel; it was skipped"
    return {"timeout": f"stopped by the time limit ({limits.cell_timeout:g} s per cell, "
                       f"{limits.submission_timeout:g} s in all): an endless loop?",
            "died": "the kernel died in this cell (os._exit, a crash, or the memory cap)",
            "not run": "not run: the submission used up its time"}.get(result.status, result.status)


def score(lesson: Lesson, run: RunResult, limits: Limits,
          problems: list[str] | None = None) -> tuple[dict[str, float], list[str]]:
    """Points per autograded cell and feedback lines, from an executed notebook.

    Never raises for what a submission did: a test cell whose result cannot be scored gets 0 points,
    and a line saying why is added to ``problems`` (when given) and to the feedback.
    """
    points, lines = {}, []
    problems = problems if problems is not None else []
    for cell, result in zip(run.nb.cells, run.cells):
        gid = _gid(cell)
        if gid in lesson.auto:
            try:
                points[gid], problem = _score_cell(cell, result, lesson.auto[gid])
            except Exception as exc:  # noqa: BLE001 - whatever a submission's outputs hold
                points[gid], problem = 0.0, f"its outputs could not be scored ({type(exc).__name__}: {str(exc)[:100]})"
            if problem:
                problems.append(f"{gid}: {problem}")
            mark = "✓" if points[gid] == lesson.auto[gid] else "✗"
            why = "" if mark == "✓" and result.status == "ok" else f": {problem or _why(result, limits)}"
            lines.append(f"{mark} {gid}  {points[gid]:g}/{lesson.auto[gid]:g}{why}")
        elif gid and is_solution(cell) and cell.cell_type == "code" and result.status != "ok":
            lines.append(f"! answer cell {gid}: {_why(result, limits)}")
    for gid, pts in lesson.manual.items():
        lines.append(f"· {gid}  ?/{pts:g}: graded by hand")
    return points, lines


def _copy_work_files(src: Path, dst: Path) -> None:
    """Copy the files beside the lesson (images, small data), not notebooks, hidden files or build output."""
    ignore = shutil.ignore_patterns("*.ipynb", ".*", "__pycache__", "build")
    shutil.copytree(src, dst, ignore=ignore, dirs_exist_ok=True)
    size = sum(p.stat().st_size for p in dst.rglob("*") if p.is_file())
    if size > _WORK_FILES_MB * 2**20:
        raise RuntimeError(f"{src} holds {size / 2**20:.0f} MB besides notebooks; every submission gets a copy, "
                           f"so keep it under {_WORK_FILES_MB} MB (move data to the dataset cache).")


async def _grade_one(sub: Submission, limits: Limits, data_dir: Path | None, threads: int,
                     executed_dir: Path, pool=None) -> tuple[dict, list[str]]:
    """Grade one submission, keep the executed notebook; never raises for anything the submission contains."""
    row = {"student": sub.student, "file": sub.rel, "hash": sub.digest, "status": "ok", "detail": "",
           "lesson": sub.lesson.path.stem if sub.lesson else "", "total": 0, "seconds": 0.0}
    row["feedback"] = feedback_name(sub.rel, row["lesson"])
    lesson = sub.lesson
    if lesson is None:
        row.update(status="error", detail="cannot tell which lesson this is: name it NN_topic.ipynb or use --lesson")
        return row, [row["detail"]]
    row.update({gid: 0 for gid in lesson.auto}, max=sum(lesson.auto.values()), manual=sum(lesson.manual.values()))
    row.update({gid: "" for gid in lesson.manual})
    try:
        submitted = nbformat.reads(sub.data.decode("utf-8"), as_version=4)
        submitted.cells  # noqa: B018 - a JSON file that is not a notebook fails here
    except Exception as exc:  # anything unreadable: corrupt JSON, a PDF, a zip ...
        row.update(status="error", detail=f"not a readable notebook ({type(exc).__name__}: {str(exc)[:120]})")
        return row, [f"Could not read your file as a Jupyter notebook: {row['detail']}."]
    try:
        nb, missing, notes = assemble(lesson, submitted)
        with tempfile.TemporaryDirectory(prefix="course-grade-") as tmp:
            root = Path(tmp)
            _copy_work_files(lesson.path.parent, root / "work")
            nbformat.write(nb, root / "work" / lesson.path.name)
            run = await run_notebook(nb, root / "work", limits, kernel_env(root, data_dir, threads, limits.device), pool)
    except Exception as exc:  # e.g. cells without a source, a kernel that cannot start: this row only
        row.update(status="error", detail=f"could not be graded ({type(exc).__name__}: {str(exc)[:160]})")
        return row, [f"Your notebook could not be graded: {row['detail']}. Ask your instructor."]
    problems: list[str] = []
    try:
        points, lines = score(lesson, run, limits, problems)
        row.update(points, total=sum(points.values()), seconds=round(run.seconds, 1))
    except Exception as exc:  # noqa: BLE001 - a bug here must cost this row, not the class
        problems.append(f"scoring failed ({type(exc).__name__}: {str(exc)[:160]})")
        lines = [f"Your notebook ran but could not be scored: {problems[-1]}. Ask your instructor."]
    try:
        nbformat.write(run.nb, executed_dir / (row["feedback"][:-4] + ".ipynb"))  # for hand grading
    except Exception as exc:  # noqa: BLE001 - e.g. text that cannot be encoded
        problems.append(f"the executed notebook could not be saved ({type(exc).__name__}: {str(exc)[:120]})")
    died = [i for i, r in enumerate(run.cells) if r.status == "died"]
    timed = [i for i, r in enumerate(run.cells) if r.status == "timeout"]
    if missing:
        notes.insert(0, f"missing cells: {', '.join(missing)}")
    notes = problems + notes + run.notes
    row["status"] = ("error" if died or problems else "timeout" if timed or run.out_of_time
                     else "missing cells" if missing else "ok")
    row["detail"] = "; ".join(notes)
    return row, lines + [f"note: {n}" for n in notes]


def _feedback_text(row: dict, lines: list[str]) -> str:
    head = (f"{row['student']} - {row['lesson'] or '?'} ({row['file']})\n"
            f"score {float(row.get('total') or 0):g} / {float(row.get('max') or 0):g} automatic"
            + (f", plus {float(row['manual']):g} graded by hand" if row.get("manual") else "")
            + f"; status {row['status']}\n\n")
    return head + "\n".join(lines) + "\n"


def feedback_name(rel: str, lesson: str) -> str:
    """The feedback file's name for ``rel`` graded against ``lesson``: readable, and unique to the pair
    (``dan/98_x.ipynb``, ``dan__98_x.ipynb``, ``dan__98_x.pdf``, ``a b`` and ``a_b`` all differ); the
    executed notebook takes the same name with ``.ipynb``."""
    stem = str(PurePosixPath(rel).with_suffix("")).replace("/", "__")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).lstrip(".-")[:80] or "submission"
    return f"{safe}-{hashlib.sha256(f'{lesson}/{rel}'.encode()).hexdigest()[:10]}.txt"


def read_grades(path: Path) -> dict[Key, dict]:
    """Rows of a grades CSV keyed by (student, lesson, file) (empty if there is none)."""
    return read_rows(path)[0]


def _error_row(sub: Submission, exc: BaseException) -> tuple[dict, list[str]]:
    """The row of a submission whose grading raised (a bug of the grader's, not the learner's)."""
    lesson = sub.lesson.path.stem if sub.lesson else ""
    detail = f"the grader failed on this file ({type(exc).__name__}: {str(exc)[:160]})"
    row = {"student": sub.student, "lesson": lesson, "file": sub.rel, "hash": "", "status": "error",
           "total": 0, "seconds": 0.0, "detail": detail, "feedback": feedback_name(sub.rel, lesson)}
    return row, [detail + ". Ask your instructor."]


def grade_submissions(folder: Path, lessons: list[Path], out: Path, only: Path | None = None,
                      feedback_dir: Path | None = None, limits: Limits = Limits(), jobs: int = 1,
                      data_dir: Path | None = None, progress: bool = True, keep=None, warm=True) -> list[dict]:
    """Grade every submission under ``folder`` into ``out`` (CSV), one feedback file and one executed
    notebook each (``<out>-feedback/``, ``<out>-executed/``); resumable. Rows of ``out`` that this run
    does not grade (other lessons, other files) are kept as they were. ``keep(submission)``, when given,
    picks the submissions to grade (``--shard``). ``warm``: True forks the kernels from a warm pool
    (:mod:`.zygote`, Linux) rather than start each cold, a :class:`.zygote.Zygote` uses that one (started
    early by the caller, so its imports overlap the grader's), False starts them cold; the scores are the
    same. Returns this run's rows."""
    from tqdm.auto import tqdm

    loaded = [load_lesson(p) for p in lessons]
    forced = next((les for les in loaded if only is not None and les.path == only), None)
    subs, skipped = find_submissions(folder, loaded, forced, limits)
    subs = [s for s in subs if keep is None or keep(s)]
    for why in skipped:
        print(f"skipped {why}")
    out.parent.mkdir(parents=True, exist_ok=True)
    feedback_dir = feedback_dir or out.with_name(out.stem + "-feedback")
    executed_dir = out.with_name(out.stem + "-executed")  # hidden tests and all: not for learners
    for folder_ in (feedback_dir, executed_dir):
        folder_.mkdir(parents=True, exist_ok=True)
    rows, old_cols = read_rows(out)  # every row of the old CSV stays unless this run grades its key
    stems = {str(r.get("lesson", "")) for r in rows.values()} | {s.lesson.path.stem for s in subs if s.lesson}
    cols = merge_columns({les.path.stem: [*les.auto, *les.manual] for les in loaded if les.path.stem in stems},
                         old_cols)
    todo: list[Submission] = []
    for sub in subs:
        k = (sub.student, sub.lesson.path.stem if sub.lesson else "", sub.rel)
        prev, name = rows.get(k), feedback_name(k[2], k[1])
        if prev and prev.get("hash") == sub.digest and prev.get("feedback") == name and (feedback_dir / name).exists():
            continue  # graded before, unchanged: its row stays
        if k[1]:
            rows.pop((k[0], "", k[2]), None)  # an old "which lesson is this?" row for the same file
        todo.append(sub)
    threads = zygote.threads_per_kernel(jobs)

    async def main(pool) -> None:
        gate = asyncio.Semaphore(jobs)

        async def one(sub: Submission) -> tuple[Submission, dict, list[str]]:
            async with gate:
                try:
                    return (sub, *await _grade_one(sub, limits, data_dir, threads, executed_dir, pool))
                except Exception as exc:  # noqa: BLE001 - one submission never stops the class
                    return (sub, *_error_row(sub, exc))

        with tqdm(total=len(todo), unit="submission", disable=not progress or not todo) as bar:
            for next_done in asyncio.as_completed([one(s) for s in todo]):
                sub, row, lines = await next_done
                try:
                    (feedback_dir / row["feedback"]).write_text(_feedback_text(row, lines), encoding="utf-8")
                except Exception as exc:  # noqa: BLE001 - no feedback file: the next run grades it again
                    row.update(status="error", hash="", detail=f"feedback not written ({type(exc).__name__}: "
                                                               f"{str(exc)[:120]}); {row.get('detail', '')}")
                rows[key(row)] = row
                write_rows(out, list(rows.values()), cols)  # after each one: an interrupted run resumes
                bar.set_postfix_str(f"{sub.rel}: {row['status']}", refresh=False)
                bar.update()

    with contextlib.ExitStack() as stack:
        pool = warm if isinstance(warm, zygote.Zygote) else None
        if warm is True and todo:
            pool = stack.enter_context(zygote.start(data_dir, threads, limits.device,
                                                    preload_for(sorted({s.lesson.path for s in todo if s.lesson}))))
        asyncio.run(main(pool))
        if pool is not None and pool.broken:
            print(f"note: {pool.broken}; the rest started cold (same scores, slower)")
    write_rows(out, list(rows.values()), cols)
    return [rows[(s.student, s.lesson.path.stem if s.lesson else "", s.rel)] for s in subs]
