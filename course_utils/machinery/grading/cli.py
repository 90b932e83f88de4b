"""``course student [--check]``, ``course grade SUBMISSIONS_DIR [--lesson NN] [--out grades.csv]`` and
``course audit NN [NN ...]`` (wrong answers through the visible checks and the grader)."""
from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

__all__ = ["register", "resolve_lesson"]

COMMANDS = ("student", "grade", "audit", "check")  # the subcommands register() adds (course's CLI loads only the one asked for)


def resolve_lesson(spec: str, lessons: list[Path]) -> Path:
    """``--lesson`` as a number (``01``), a name (``01_tensors``) or a path to a notebook."""
    path = Path(spec)
    if path.suffix == ".ipynb" and path.exists():
        return path.resolve()
    hits = [p for p in lessons if p.stem == spec or p.name[:2] == spec.zfill(2) or p.stem.startswith(spec)]
    if len(hits) != 1:
        names = ", ".join(p.stem for p in lessons) or "none"
        raise SystemExit(f"--lesson {spec!r} matches {len(hits)} lessons (have: {names}); "
                         "give its number, its name, or a path to the notebook.")
    return hits[0]


def _cmd_student(args) -> int:
    from ..nbtools import lesson_notebooks
    from .student import stale_student_copies, write_student_copies

    lessons = lesson_notebooks(args.root)
    out = args.root / "student"
    if args.check:
        stale = stale_student_copies(lessons, out)
        for path in stale:
            print(f"stale {path}")
        if stale:
            print(f"{len(stale)} student copies are out of date: run `course student` and commit student/")
            return 1
        print(f"{len(lessons)} student copies are up to date")
        return 0
    changed = write_student_copies(lessons, out)
    print(f"wrote {len(changed)} of {len(lessons)} student copies into {out}" if changed
          else f"{len(lessons)} student copies already up to date in {out}")
    return 0


def _cmd_grade(args) -> int:
    from ..nbtools import lesson_notebooks
    from .preload import preload_for
    from .zygote import start as start_pool, threads_per_kernel

    if args.merge:
        return _merge(args)
    lessons = lesson_notebooks(args.root)
    only = resolve_lesson(args.lesson, lessons) if args.lesson else None
    with contextlib.ExitStack() as stack:
        # The warm pool starts first, so its imports run while the grader reads the lessons and the download.
        warm = (not args.cold and args.submissions is not None and args.submissions.exists()
                and stack.enter_context(start_pool(args.data, threads_per_kernel(args.jobs), args.device,
                                                   preload_for([only] if only else lessons))))
        return _grade(args, warm or False, lessons, only)


def _merge(args) -> int:
    from ..nbtools import lesson_notebooks
    from .classrun import finish, merge

    lessons = lesson_notebooks(args.root)
    args.report = args.report or args.out.with_name("report")
    merge(args.merge, args.out, lessons)
    finish(args.out, args.export, args.report, args.assignment)
    return 0


def _grade(args, warm, lessons: list[Path], only: Path | None) -> int:
    from .classrun import add_rejected, finish, read_in
    from .grade import grade_submissions
    from .runner import Limits
    from .sandbox import landlock_abi
    from .shards import in_shard, parse_shard

    if only is not None and only not in lessons:
        lessons.append(only)
    if not lessons:
        raise SystemExit(f"no lessons found in {args.root / 'notebooks'}: run this from the course repository.")
    args.report = args.report or args.out.with_name("report")
    if args.submissions is None:
        raise SystemExit("give the folder or zip that holds the submissions (or --merge CSV ...)")
    shard = parse_shard(args.shard) if args.shard else None
    intake = read_in(args.submissions, args.out, lessons, only, args.lms)
    if landlock_abi() < 1:
        msg = ("Landlock is not available here, so submissions can write wherever you can. "
               "Grade untrusted work in a container or VM (docs/instructors.md).")
        if args.require_sandbox:
            raise SystemExit(msg)
        print(f"warning: {msg}")
    if args.device not in ("cpu", "mps") and args.memory_mb > 0:
        print(f"warning: --device {args.device} with a {args.memory_mb} MiB address-space cap: CUDA reserves far "
              "more address space than that and fails to start; add --memory-mb 0 (no cap) for GPU kernels.")
    limits = Limits(cell_timeout=args.cell_timeout, submission_timeout=args.timeout, memory_mb=args.memory_mb,
                    device=args.device)
    rows = grade_submissions(intake.folder, lessons, args.out, only=only, feedback_dir=args.feedback,
                             limits=limits, jobs=args.jobs, data_dir=args.data, progress=not args.quiet,
                             keep=lambda sub: in_shard(sub.student, shard), warm=warm)
    rows += add_rejected(args.out, intake, shard)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no submissions found"
    print(f"{len(rows)} submissions graded into {args.out}: {summary}")
    finish(args.out, args.export, args.report, args.assignment)
    return 0


def _cmd_audit(args) -> int:
    from ..nbtools import lesson_notebooks
    from .audit import audit_lesson
    from .runner import Limits

    lessons = lesson_notebooks(args.root)
    paths = [resolve_lesson(spec, lessons) for spec in args.lessons] if args.lessons else lessons
    bad = 0
    for path in paths:
        res = audit_lesson(path, limits=Limits(cell_timeout=args.cell_timeout, submission_timeout=args.timeout))
        bad += bool(res.problems)
        print(f"{path.stem}: {res.checked} wrong answers checked in {res.seconds:.1f} s, "
              + (f"{len(res.problems)} problem(s)" if res.problems else "every check held"))
        for problem in res.problems:
            print(f"  - {problem}")
    return 1 if bad else 0


def _cmd_check(args) -> int:
    from .check import check_notebook, format_lines
    from .runner import Limits

    if not args.notebook.is_file():
        raise SystemExit(f"{args.notebook} is not a file: give your notebook, e.g. student/04_convolutions.ipynb")
    lines = check_notebook(args.notebook, Limits(cell_timeout=args.cell_timeout, submission_timeout=args.timeout),
                           data_dir=args.data)
    print(format_lines(lines))
    return 0 if all(line.passed for line in lines) else 1


def register(subparsers) -> None:
    """Add ``student`` and ``grade`` to the ``course`` command."""
    from ..nbtools import ROOT

    s = subparsers.add_parser("student", help="generate the learner copies in student/ from notebooks/")
    s.add_argument("--check", action="store_true", help="only check they are up to date; exit 1 if not")
    s.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    s.set_defaults(func=_cmd_student)

    g = subparsers.add_parser("grade", help="grade a folder of submitted notebooks into a CSV (offline)")
    g.add_argument("submissions", type=Path, nargs="?", help="folder or zip: a Canvas or Moodle download, "
                   "<student>/<NN_topic>.ipynb or <student>__<NN_topic>.ipynb")
    g.add_argument("--lesson", help="grade every file against this lesson (number, name or .ipynb path); "
                                    "default: from each file's name or contents")
    g.add_argument("--out", type=Path, default=Path("grades.csv"), help="the CSV to write and resume from (default: grades.csv)")
    g.add_argument("--feedback", type=Path, default=None,
                   help="folder for one feedback .txt per submission (default: <out>-feedback/ beside the CSV)")
    g.add_argument("--cell-timeout", type=float, default=120.0, help="seconds one cell may run (default: 120)")
    g.add_argument("--timeout", type=float, default=600.0, help="seconds one whole submission may run, restarts included (default: 600)")
    g.add_argument("--memory-mb", type=int, default=6144, help="address-space cap per kernel in MiB; torch alone "
                                                                "takes ~3300; 0: no cap (default: 6144)")
    g.add_argument("--device", default="cpu", help="COURSE_DEVICE for the kernels: cpu hides every GPU; cuda, cuda:1 "
                                                   "or mps pick one; auto lets each lesson choose (default: cpu)")
    g.add_argument("--jobs", type=int, default=1, help="submissions graded at the same time (default: 1)")
    g.add_argument("--data", type=Path, default=None,
                   help="dataset cache the kernels may read, not write (default: an empty one per submission)")
    g.add_argument("--cold", action="store_true", help="start every kernel cold instead of forking it from the warm "
                                                       "pool that pre-imports torch & co. once (same scores; default: warm on Linux)")
    g.add_argument("--require-sandbox", action="store_true", help="refuse to grade where Landlock cannot confine writes (default: warn)")
    g.add_argument("--quiet", action="store_true", help="no progress bar (default: show it)")
    g.add_argument("--lms", choices=["auto", "canvas", "moodle", "plain"], default="auto",
                   help="how the submissions are named (default: auto, from the file names)")
    g.add_argument("--export", action="append", default=[], choices=["canvas", "moodle", "csv"],
                   help="also write the gradebook file to import: canvas, moodle or csv (nbgrader's columns); "
                        "repeatable (default: none)")
    g.add_argument("--assignment", help='Canvas column header, e.g. "Lesson 02 (4567)" (default: the lesson name)')
    g.add_argument("--report", type=Path, default=None, help="class report: writes REPORT.html, REPORT.md and "
                                                             "figures (default: report beside the CSV)")
    g.add_argument("--shard", help="grade only slice i of N (0 <= i < N), e.g. 0/4; by student (default: all)")
    g.add_argument("--merge", type=Path, nargs="+", help="merge these shard CSVs into --out instead of grading")
    g.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    g.set_defaults(func=_cmd_grade)

    a = subparsers.add_parser("audit", help="run each lesson's wrong answers (tests/wrong_answers/) through its checks")
    a.add_argument("lessons", nargs="*", help="lesson numbers or names (default: every lesson)")
    a.add_argument("--cell-timeout", type=float, default=120.0, help="seconds one cell may run (default: 120)")
    a.add_argument("--timeout", type=float, default=600.0, help="seconds the whole lesson may run (default: 600)")
    a.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    a.set_defaults(func=_cmd_audit)

    c = subparsers.add_parser("check", help="run your notebook and print one line per exercise (hidden tests never run)")
    c.add_argument("notebook", type=Path, help="your copy of a lesson, e.g. student/04_convolutions.ipynb")
    c.add_argument("--cell-timeout", type=float, default=120.0, help="seconds one cell may run (default: 120)")
    c.add_argument("--timeout", type=float, default=600.0, help="seconds the whole notebook may run (default: 600)")
    c.add_argument("--data", type=Path, default=None,
                   help="dataset cache to read (default: a fresh one, so the check depends on nothing you downloaded)")
    c.set_defaults(func=_cmd_check)
