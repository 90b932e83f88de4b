"""The ``course`` command (also ``python -m course_utils``): what the Makefile runs, usable without make.

    course run [--profile auto] [--only 00 01]   execute lessons, write build/report.md
    course run --profile light --data shapes      a rehearsal: light's sizes on the shapes world at real sizes
    course rehearse [--profile light] [--only 09]  rehearse and merge the times into docs/measurements/
    course test [PYTEST ARGS]                     run the test suite
    course doctor                                 check the installation and say what to fix
    course lab                                    JupyterLab on notebooks/
    course nb clean|sync|refresh [NOTEBOOKS]      keep notebooks clean / badges synced / outputs fresh
    course nb badges --ref TAG                    point badges and the Colab setup cell at a release
    course site [--no-solutions] [--run] [--check] build the course site from the executed lessons
Other topics add their own commands (``course data``, ``course student``, ``course grade``) through a
``register(subparsers)`` function in their ``cli`` module.
"""
from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]

# Modules that add subcommands; a topic that is not installed yet is skipped.
_COMMAND_MODULES = (f"{__package__}.data_cli", f"{__package__}.grading.cli", f"{__package__}.train_cli")
_BUILTIN = ("run", "rehearse", "site", "test", "doctor", "lab", "nb")


def _check_data(profile: str, data: str | None) -> str | None:
    """The message for a --profile/--data pair that cannot work (auto never picks a rehearsal), else None."""
    if data == "shapes" and profile not in ("light", "full", "smoke"):
        return "--data shapes needs --profile light or full: a rehearsal states which sizes it rehearses"
    if data == "real" and profile == "smoke":
        return "smoke runs on the small shapes world only: use --profile light or full for real data"
    return None


def _cmd_run(args) -> int:
    from .report import run_all

    problem = _check_data(args.profile, args.data)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    results = run_all(profile=args.profile, only=args.only, seed=args.seed, data=args.data, timeout=args.timeout)
    build = Path(os.environ.get("COURSE_BUILD", Path(__file__).resolve().parents[2] / "build"))
    print(f"\nreport: {build / 'report.md'}")
    print((build / "report.md").read_text(encoding="utf-8"))
    return 0 if all(r.status == "ok" for r in results) else 1


def _cmd_rehearse(args) -> int:
    from .rehearse import measurements_table, rehearse

    if args.table:
        print(measurements_table())
        return 0
    return rehearse(profile=args.profile, only=args.only, seed=args.seed, threads=args.threads or None,
                    write=not args.no_write, timeout=args.timeout, memory_only=args.memory_only)


def _cmd_site(args) -> int:
    from .nbtools import ROOT, lesson_notebooks
    from .report import run_all
    from .site import build_site

    build = Path(os.environ.get("COURSE_BUILD", ROOT / "build"))
    executed = build / "executed"
    stale = [p.stem for p in lesson_notebooks() if args.run or not (executed / p.name).exists()
             or (executed / p.name).stat().st_mtime < p.stat().st_mtime]
    if stale:
        print(f"executing {len(stale)} lesson(s) first (profile {args.profile}): {', '.join(stale)}")
        run_all(profile=args.profile, only=stale, build=build)
    out = args.out or build / ("site" if not args.no_solutions else "site-student")
    result = build_site(executed, out, solutions=not args.no_solutions)
    print(f"site: {result.index} ({result.pages} pages, built in {result.seconds:.0f} s)")
    if not args.check:
        return 0
    from .sitecheck import check_site

    bad = [r for r in check_site(out, ROOT) if r.problems]
    for r in bad:
        print(f"{r.page}:\n  " + "\n  ".join(r.problems))
    print(f"browser check: {'every page passed' if not bad else f'{len(bad)} page(s) with problems'}")
    return 1 if bad else 0


def _cmd_test(args) -> int:
    return subprocess.call([sys.executable, "-m", "pytest", *args.pytest_args])


def _cmd_lab(args) -> int:
    from .nbtools import ROOT

    extra = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []  # containers run as root
    return subprocess.call([sys.executable, "-m", "jupyter", "lab", str(ROOT / "notebooks"), *extra, *args.lab_args])


def _cmd_doctor(args) -> int:
    from .doctor import doctor

    return doctor()


def _cmd_nb(args) -> int:
    from . import nbtools

    paths = [Path(p) for p in args.notebooks] or nbtools.lesson_notebooks()
    if args.action == "badges":  # pin the release: pyproject's [tool.cv-course] release, then every lesson
        if not args.ref:
            print("course nb badges needs --ref TAG (or --ref main)")
            return 2
        nbtools.set_release(args.ref)
        args.action = "sync"
    changed = 0
    for p in paths:
        if args.action == "refresh":
            nbtools.refresh_outputs(p)
            nbtools.sync_file(p)
            print(f"refreshed {p}")
            continue
        did = nbtools.clean_file(p) if args.action == "clean" else nbtools.sync_file(p)
        changed += did
        print(f"{'changed' if did else 'unchanged'} {p}")
    if args.check and changed:
        print(f"{changed} notebook(s) were not clean: run `course nb {args.action}` and commit")
        return 1
    return 0


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``course`` parser; with ``command``, a topic module's subcommands are added only where it provides
    that command (its ``COMMANDS``), so ``course grade`` does not import torch for ``course train``'s options."""
    p = argparse.ArgumentParser(prog="course", description="Run, test and manage the computer-vision course.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="execute every lesson and write build/report.md")
    r.add_argument("--profile", default="auto", help="smoke, light, full or auto (default: auto)")
    r.add_argument("--only", nargs="*", help="lesson numbers or name prefixes, e.g. 00 01 (default: all)")
    r.add_argument("--seed", type=int, default=0, help="seed passed to every lesson (default: 0)")
    r.add_argument("--data", choices=("real", "shapes"), default=None,
                   help="which data light/full read: real datasets, or the shapes world at real sizes "
                        "(a rehearsal; random weights). Default: $COURSE_DATA_SOURCE, else real")
    r.add_argument("--timeout", type=int, default=1800, help="seconds per cell before a lesson fails (default: 1800)")
    r.set_defaults(func=_cmd_run)

    h = sub.add_parser("rehearse", help="run every lesson's light (or full) profile on the shapes world at real "
                                        "sizes and commit the times (docs/measurements/)")
    h.add_argument("--profile", default="light", choices=("light", "full"), help="default: light")
    h.add_argument("--only", nargs="*", help="lesson numbers or name prefixes (default: all); rows merge into the table")
    h.add_argument("--seed", type=int, default=0, help="seed passed to every lesson (default: 0)")
    h.add_argument("--threads", type=int, default=2,
                   help="torch CPU threads per lesson (default: 2, what Binder gives; 0: every core)")
    h.add_argument("--no-write", action="store_true", help="do not touch docs/measurements/ (default: merge the times)")
    h.add_argument("--timeout", type=int, default=3600, help="seconds per cell before a lesson fails (default: 3600)")
    h.add_argument("--memory-only", action="store_true",
                   help="merge only the peak memory, keep the committed times (for a run on a busy machine)")
    h.add_argument("--table", action="store_true", help="only print the README table from docs/measurements/")
    h.set_defaults(func=_cmd_rehearse)

    s = sub.add_parser("site", help="build the course site (build/site/) from the executed lessons")
    s.add_argument("--no-solutions", action="store_true",
                   help="leave the solutions out: answers show the learner's stub (default: folded solutions)")
    s.add_argument("--run", action="store_true", help="execute every lesson first (default: only those not executed yet)")
    s.add_argument("--profile", default="auto", help="profile for lessons executed first (default: auto)")
    s.add_argument("--out", type=Path, default=None, help="output folder (default: build/site, or build/site-student)")
    s.add_argument("--check", action="store_true", help="then open every page in headless Chromium and report problems")
    s.set_defaults(func=_cmd_site)

    t = sub.add_parser("test", help="run the test suite (pytest); extra arguments go to pytest")
    t.add_argument("pytest_args", nargs=argparse.REMAINDER)
    t.set_defaults(func=_cmd_test)

    d = sub.add_parser("doctor", help="check the installation and say what to fix")
    d.set_defaults(func=_cmd_doctor)

    lab = sub.add_parser("lab", help="start JupyterLab on notebooks/")
    lab.add_argument("lab_args", nargs=argparse.REMAINDER)
    lab.set_defaults(func=_cmd_lab)

    nb = sub.add_parser("nb", help="clean, sync badges, or refresh compared outputs of lesson notebooks")
    nb.add_argument("action", choices=["clean", "sync", "refresh", "badges"])
    nb.add_argument("--ref", help="badges: the tag (or branch) the badges and the Colab setup cell point at")
    nb.add_argument("notebooks", nargs="*", help="paths (default: every lesson)")
    nb.add_argument("--check", action="store_true", help="exit 1 if anything had to change")
    nb.set_defaults(func=_cmd_nb)

    topics = []
    for mod in _COMMAND_MODULES:
        try:
            topics.append(importlib.import_module(mod))
        except ModuleNotFoundError as exc:
            if exc.name not in (mod, mod.rsplit(".", 1)[0]):
                raise
    claimed = {c for topic in topics for c in topic.COMMANDS}
    for topic in topics:  # a known command loads only its own topic; anything else (help, a typo) loads all
        if command in topic.COMMANDS or (command not in claimed and command not in _BUILTIN):
            topic.register(sub)
    return p


_GRADING = ("grade", "audit", "check")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command in _GRADING:
        # jsonschema (imported by nbformat) imports rfc3987_syntax for its "iri" format check, which builds a
        # grammar for 0.7-3 s of CPU per grader process; nbformat validates without format checks, so no
        # result can change. Only skipped when nothing imported it yet.
        sys.modules.setdefault("rfc3987_syntax", None)
    args = build_parser(command).parse_args(argv)
    return args.func(args)
