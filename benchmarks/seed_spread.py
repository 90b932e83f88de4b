"""How much do a lesson's recorded numbers move from seed to seed? The evidence behind each smoke range.

Runs lessons in the smoke profile with seeds 0..N-1 (papermill, ``seed`` injected), then prints one
markdown table per lesson: for every recorded number, its min / median / max over the seeds, the
smoke range from ``tests/expected/NN_topic.toml``, and the **margin**: how far the worst seed stays
inside that range (negative = a seed falls outside). A claim's range is meaningful when it would fail
were the claim false (e.g. ``min`` above 0 for "A beats B") and every seed passes with room to spare.

    python benchmarks/seed_spread.py 07 09          # lessons 07 and 09, 5 seeds each
    python benchmarks/seed_spread.py --seeds 3 --jobs 2 12
    python benchmarks/seed_spread.py --json build/spread.json 07   # also keep the raw numbers

Numbers that do not change with the seed (parameter counts, worked examples) are listed once as "fixed".
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.machinery.nbtools import lesson_notebooks  # noqa: E402
from course_utils.record import expected_for, format_range, load_ranges  # noqa: E402


def _run(args: tuple[str, int, str]) -> tuple[str, int, dict, str, float]:
    """Execute one lesson with one seed in smoke; (lesson, seed, metrics, error, seconds)."""
    path, seed, out = args
    os.environ["COURSE_PROFILE"] = "smoke"
    os.environ["COURSE_OFFLINE"] = "1"
    from course_utils.machinery.report import execute

    res = execute(Path(path), Path(out) / f"seed{seed}", profile="smoke", seed=seed, timeout=600, ranges={})
    return Path(path).stem, seed, res.metrics, res.error, res.seconds


def _margin(values: list[float], spec: dict) -> float | None:
    """Smallest distance from a value to a bound of ``spec`` (negative when outside); None without bounds."""
    gaps = []
    if "min" in spec:
        gaps.append(min(values) - spec["min"])
    if "max" in spec:
        gaps.append(spec["max"] - max(values))
    return min(gaps) if gaps else None


def table(lesson: str, runs: dict[int, dict], ranges: dict) -> str:
    """The markdown table for one lesson (see the module docstring)."""
    expected = expected_for(ranges, lesson, "smoke")
    names = list(dict.fromkeys(k for m in runs.values() for k in m))
    rows = [f"### {lesson} (seeds {', '.join(str(s) for s in sorted(runs))})", "",
            "| number | min | median | max | smoke range | margin |", "|---|---|---|---|---|---|"]
    for name in names:
        values = [runs[s].get(name) for s in sorted(runs)]
        spec = expected.get(name, {})
        rng = format_range(spec) if spec else "(none)"
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            rows.append(f"| {name} | - | {values[0]!r} | - | {rng} | {'fixed' if len({json.dumps(v) for v in values}) == 1 else 'varies'} |")
            continue
        if len(set(values)) == 1:
            shown = f"{values[0]:,}" if isinstance(values[0], int) else f"{values[0]:.4g}"
            rows.append(f"| {name} | - | {shown} | - | {rng} | fixed |")
            continue
        m = _margin(values, spec)
        rows.append(f"| {name} | {min(values):.4g} | {statistics.median(values):.4g} | {max(values):.4g} | {rng} | "
                    + ("-" if m is None else f"{m:+.3g}") + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("lessons", nargs="+", help="lesson numbers or name prefixes, e.g. 07 09")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default: 5)")
    p.add_argument("--jobs", type=int, default=2, help="lessons run at once (default: 2)")
    p.add_argument("--json", type=Path, default=None, help="also write the raw numbers here (default: no)")
    args = p.parse_args(argv)
    paths = [l for l in lesson_notebooks(ROOT) if any(l.stem.startswith(x) for x in args.lessons)]
    if not paths:
        p.error(f"no lesson matches {args.lessons}")
    os.environ.setdefault("COURSE_DATA", str(ROOT / "build" / "test-data"))
    os.environ.setdefault("COURSE_BUILD", str(ROOT / "build" / "spread"))
    out = tempfile.mkdtemp(prefix="seed-spread-")
    jobs = [(str(path), seed, out) for path in paths for seed in range(args.seeds)]
    results: dict[str, dict[int, dict]] = {}
    failed = 0
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for lesson, seed, metrics, error, seconds in pool.map(_run, jobs):
            print(f"{lesson} seed {seed}: {'FAILED ' + error if error else 'ok'} in {seconds:.1f} s", flush=True)
            failed += bool(error)
            results.setdefault(lesson, {})[seed] = metrics
    ranges = load_ranges(ROOT / "tests" / "expected")
    print()
    for lesson in sorted(results):
        print(table(lesson, results[lesson], ranges), end="\n\n")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, sort_keys=True))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
