"""How fast is ``course grade``? The real ``nbgrader autograde`` and ``course grade --jobs N`` grade the same
submissions (K copies of one lesson's solution) on the same machine, in one run.

    (a) nbgrader   ``nbgrader autograde`` in a throwaway nbgrader course (generate_assignment first, untimed),
                   its kernels with the same environment as the grader's (smoke profile, offline, CPU);
    (b) course     ``course grade SUBMISSIONS --lesson NN --jobs N`` into a fresh CSV (nothing resumed):
                   kernels forked from the warm pool;
    (c) cold       the same with ``--cold``: every kernel started cold, as nbgrader's are;
    limit          the physical limit: each submission's own execution time (the sum of its cells' run
                   times in the executed notebook, from nbclient's timing metadata) summed over the K
                   submissions and divided by the cores. Two of them: the cells as a cold kernel runs them
                   (nbgrader's executed copies: what running the notebook costs, imports included) and as
                   course grade's warm kernels run them (the imports the pool did once are not in them).

Rounds alternate the order (a b c, then c b a) so a machine getting busier or quieter slows all alike; the
load average is printed with each timing. Prints submissions per minute for each way, the ratio
course/nbgrader within each round, course time / each limit, and that every way gave every submission the
same score. Where the time of one submission goes: kernel start and the rest of the grader's overhead
(wall time of a submission minus its cells), the setup cell (imports), the lesson's other cells.

    python benchmarks/bench_grade.py                      # lesson 02, 6 copies, --jobs 2, 2 rounds
    python benchmarks/bench_grade.py --copies 24 --rounds 1  # a bigger class: start-up costs matter less
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _env(tmp: Path) -> dict[str, str]:
    """The environment the grader gives its kernels, for nbgrader's kernels too."""
    env = dict(os.environ)
    import alembic  # nbgrader runs the `alembic` command: put the venv that holds it on PATH

    bins = [str(BIN), str(Path(alembic.__file__).resolve().parents[4] / "bin")]
    env["PATH"] = os.pathsep.join([*bins, env.get("PATH", "")])
    for name in ("home", "data", "build", "cache"):
        (tmp / name).mkdir(parents=True, exist_ok=True)
    env.update(COURSE_PROFILE="smoke", COURSE_OFFLINE="1", MPLBACKEND="Agg", CUDA_VISIBLE_DEVICES="",
               COURSE_DEVICE="cpu", COURSE_DATA=str(tmp / "data"), COURSE_BUILD=str(tmp / "build"),
               PYTHONDONTWRITEBYTECODE="1")
    return env


def _course_dir(tmp: Path, lesson: Path, copies: int) -> tuple[Path, str]:
    """A throwaway nbgrader course with the lesson as its one assignment and ``copies`` submissions of it."""
    course, name = tmp / "nbgrader", lesson.stem
    src = course / "source" / name
    shutil.copytree(lesson.parent, src, ignore=shutil.ignore_patterns("*.ipynb", ".*", "__pycache__", "build"))
    shutil.copy(lesson, src / lesson.name)
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.course_id = 'bench'\n"
        f"c.CourseDirectory.root = {str(course)!r}\nc.ExecutePreprocessor.timeout = 600\n")
    for i in range(copies):
        dst = course / "submitted" / f"s{i:03d}" / name
        shutil.copytree(src, dst)  # the solution notebook, handed in as is
    subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", name, "--force", "--log-level=ERROR"],
                   cwd=course, check=True, env=_env(tmp))
    return course, name


def _load() -> str:
    return "%.1f" % os.getloadavg()[0]


def run_nbgrader(tmp: Path, course: Path, name: str) -> tuple[float, dict[str, float]]:
    shutil.rmtree(course / "autograded", ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nbgrader", "autograde", name, "--force", "--log-level=ERROR"], cwd=course, check=True,
                   env=_env(tmp))
    wall = time.perf_counter() - t0
    out = tmp / "nbgrader-scores.csv"
    subprocess.run([sys.executable, "-m", "nbgrader", "export", f"--to={out}", "--log-level=ERROR"], cwd=course, check=True,
                   env=_env(tmp))
    with out.open() as f:
        return wall, {r["student_id"]: float(r["raw_score"]) for r in csv.DictReader(f)}


def run_course(tmp: Path, course: Path, name: str, jobs: int, n: int, cold: bool = False):
    out = tmp / f"course-{n}{'-cold' if cold else ''}" / "grades.csv"
    t0 = time.perf_counter()
    subprocess.run([BIN / "course", "grade", str(course / "submitted"), "--lesson", name, "--out", str(out),
                    "--jobs", str(jobs), "--quiet", *(["--cold"] if cold else [])],
                   cwd=ROOT, check=True, env=_env(tmp), stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    with out.open() as f:
        rows = list(csv.DictReader(f))
    return wall, {r["student"]: float(r["total"]) for r in rows}, out, sum(float(r["seconds"]) for r in rows)


def cell_seconds(executed: Path) -> list[float]:
    """Each code cell's run time in an executed notebook (nbclient's execute_input .. execute_reply)."""
    times = []
    for cell in nbformat.read(executed, 4).cells:
        t = cell.get("metadata", {}).get("execution", {})
        if cell.cell_type == "code" and "iopub.execute_input" in t and "shell.execute_reply" in t:
            start, end = (datetime.fromisoformat(t[k].replace("Z", "+00:00"))
                          for k in ("iopub.execute_input", "shell.execute_reply"))
            times.append((end - start).total_seconds())
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lesson", default="02", help="lesson number (default: 02)")
    ap.add_argument("--copies", type=int, default=6, help="submissions (default: 6)")
    ap.add_argument("--jobs", type=int, default=2, help="course grade --jobs (default: 2)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds, alternating the order (default: 2)")
    args = ap.parse_args()
    lesson = next((ROOT / "notebooks").glob(f"{args.lesson}_*.ipynb"))
    cores = len(os.sched_getaffinity(0))
    import torch
    print(f"{platform.processor() or platform.machine()}, {cores} cores, torch {torch.__version__}, "
          f"python {platform.python_version()}; {lesson.stem} x {args.copies}, --jobs {args.jobs}")
    with tempfile.TemporaryDirectory(prefix="bench-grade-") as t:
        tmp = Path(t)
        course, name = _course_dir(tmp, lesson, args.copies)
        results = []
        names = {"a": "nbgrader", "b": "course  ", "c": "cold    "}
        for r in range(args.rounds):
            got = {}
            for way in ("a", "b", "c") if r % 2 == 0 else ("c", "b", "a"):
                load = _load()
                if way == "a":
                    wall, scores = run_nbgrader(tmp, course, name)
                    got["a"] = (wall, scores, load, None, None)
                    nb_cells = [sum(cell_seconds(p)) for p in sorted((course / "autograded").rglob("*.ipynb"))]
                else:
                    wall, scores, out, kernel_s = run_course(tmp, course, name, args.jobs, r, cold=way == "c")
                    got[way] = (wall, scores, load, out, kernel_s)
                print(f"round {r + 1} {names[way]}: {got[way][0]:6.1f} s "
                      f"({60 * args.copies / got[way][0]:.2f} submissions/min), load before {load}, after {_load()}")
            results.append((got, nb_cells))
        report(results, args, cores)


def report(results, args, cores: int) -> None:
    k, jobs = args.copies, min(args.jobs, args.copies)
    got, nb_cells = results[-1]
    cells = [(p.name, cell_seconds(p)) for p in sorted(got["b"][3].with_name("grades-executed").glob("*.ipynb"))]
    warm_own = [sum(t) for _, t in cells]
    cold_own = [sum(cell_seconds(p)) for p in sorted(got["c"][3].with_name("grades-executed").glob("*.ipynb"))]
    limit_cold, limit_warm = sum(nb_cells) / cores, sum(warm_own) / cores
    slowest = sorted(range(len(cells[0][1])), key=lambda i: -cells[0][1][i])[:3]
    print(f"\nper submission (last round): its cells {sum(nb_cells) / k:.1f} s in nbgrader's cold kernels, "
          f"{sum(cold_own) / k:.1f} s in course grade's cold kernels, {sum(warm_own) / k:.1f} s in its warm ones "
          "(slowest warm cells: " + ", ".join(f"#{i} {cells[0][1][i]:.1f} s" for i in slowest) + ")")
    for i, (got, _) in enumerate(results):
        a, b, c = got["a"][0], got["b"][0], got["c"][0]
        same = got["a"][1] == got["b"][1] == got["c"][1]
        print(f"round {i + 1}: course/nbgrader speed {a / b:.2f}x (cold: {a / c:.2f}x); course time / limit "
              f"{b / limit_cold:.2f} (cold cells), {b / limit_warm:.2f} (its own warm cells); cold course time / "
              f"limit {c / limit_cold:.2f}; per warm submission: kernel start + sandbox + scoring "
              f"{(got['b'][4] - sum(warm_own)) / k:.2f} s, grader start-up and the rest "
              f"{(b * jobs - got['b'][4]) / k:.2f} s; same scores: {same} ({sorted(set(got['a'][1].values()))})")
    print(f"limit (cold cells): {limit_cold:.1f} s ({60 * k / limit_cold:.2f} submissions/min) = the cells of "
          f"nbgrader's executed copies, {sum(nb_cells):.1f} s / {cores} cores")
    print(f"limit (warm cells): {limit_warm:.1f} s ({60 * k / limit_warm:.2f} submissions/min) = the cells of "
          f"course grade's executed copies, {sum(warm_own):.1f} s / {cores} cores")


if __name__ == "__main__":
    main()
