"""Run every lesson with papermill and write the run report: ``build/report.md`` and ``report.html``.

This is what ``make run`` / ``course run`` does: one row per notebook with profile, device, seconds,
status, and each recorded metric beside its expected range (from ``tests/expected/NN_topic.toml``); the
HTML page draws each number against its range and charts the seconds per lesson of every profile run so
far (``build/runs/<profile>.json``, plus committed measurements in ``docs/measurements/``). Executed
notebooks stay in ``build/executed/``; ``course site`` turns them into the course site.
"""
from __future__ import annotations

import html
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .nbtools import ROOT, lesson_notebooks
from .record import check, expected_for, format_range, load_ranges, read_metrics

__all__ = ["NotebookResult", "execute", "result_from_executed", "run_all", "write_report", "read_runs"]

RANGES = ROOT / "tests" / "expected"
MEASUREMENTS = ROOT / "docs" / "measurements"


@dataclass
class NotebookResult:
    """Outcome of executing one lesson."""

    name: str
    status: str  # ok | failed | out-of-range | no-metrics
    seconds: float
    profile: str | None = None
    device: str | None = None
    metrics: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    error: str = ""


def _device_from(nb) -> str | None:
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            text = out.get("text", "")
            if isinstance(text, list):
                text = "".join(text)
            for line in text.splitlines():
                if line.startswith("device   "):
                    return line.split()[1].rstrip(",")
    return None


def _result(name: str, nb: dict, seconds: float, error: str, ranges: dict | None) -> NotebookResult:
    metrics, used = read_metrics(nb)
    res = NotebookResult(name, "ok", seconds, used, _device_from(nb), metrics, error=error)
    if ranges is None:
        ranges = load_ranges(RANGES) if RANGES.exists() else {}
    expected = expected_for(ranges, name, used)
    res.problems = check(metrics, expected) if metrics else []
    if error:
        res.status = "failed"
    elif not metrics:
        res.status = "no-metrics"
    elif res.problems:
        res.status = "out-of-range"
    return res


def execute(path: Path, out_dir: Path, profile: str = "auto", seed: int = 0,
            timeout: int = 1800, ranges: dict | None = None) -> NotebookResult:
    """Execute one notebook with papermill into ``out_dir`` and check its recorded metrics."""
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / path.name
    t0 = time.perf_counter()
    error = ""
    try:
        pm.execute_notebook(str(path), str(out), parameters={"profile": profile, "seed": seed},
                            kernel_name="python3", cwd=str(path.parent), progress_bar=False,
                            execution_timeout=timeout)
    except Exception as exc:  # papermill raises PapermillExecutionError with the cell's traceback
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
    seconds = time.perf_counter() - t0
    nb = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {"cells": []}
    return _result(path.stem, nb, seconds, error, ranges)


def result_from_executed(path: Path, ranges: dict | None = None) -> NotebookResult:
    """The result of an earlier execution, read back from the executed notebook (papermill's metadata)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    pm = nb.get("metadata", {}).get("papermill", {})
    error = ""
    if pm.get("exception"):
        errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        error = f"{errors[0].get('ename')}: {errors[0].get('evalue')}" if errors else "the run stopped with an error"
    return _result(path.stem, nb, float(pm.get("duration") or 0.0), error, ranges)


def run_all(profile: str = "auto", only: list[str] | None = None, build: Path | None = None,
            seed: int = 0) -> list[NotebookResult]:
    """Execute the lessons (all, or those whose name starts with one of ``only``) and write the report."""
    build = Path(build or os.environ.get("COURSE_BUILD", ROOT / "build"))
    ranges = load_ranges(RANGES) if RANGES.exists() else {}
    results = []
    for path in lesson_notebooks():
        if only and not any(path.stem.startswith(o) for o in only):
            continue
        print(f"running {path.name} (profile {profile}) ...", flush=True)
        res = execute(path, build / "executed", profile, seed, ranges=ranges)
        print(f"  {res.status} in {res.seconds:.1f}s, profile {res.profile}, device {res.device}"
              + (f"\n  {res.error}" if res.error else "")
              + "".join(f"\n  {p}" for p in res.problems), flush=True)
        results.append(res)
    _save_run(results, build)
    write_report(results, build, ranges)
    return results


def _save_run(results: list[NotebookResult], build: Path) -> None:
    """Add these timings to ``build/runs/<profile>.json`` (one file per profile; later runs update it)."""
    by_profile: dict[str, dict[str, float]] = {}
    for r in results:
        if r.profile and r.status != "failed":
            by_profile.setdefault(r.profile, {})[r.name] = round(r.seconds, 1)
    for profile, times in by_profile.items():
        path = build / "runs" / f"{profile}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        old = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**old, **times}, indent=1, sort_keys=True))


def read_runs(build: Path) -> dict[str, dict[str, float]]:
    """Seconds per lesson for each run label: this machine's ``build/runs/*.json`` and the committed
    ``docs/measurements/*.json`` (``{"label": ..., "seconds": {lesson: s}}``, e.g. a rehearsal)."""
    runs: dict[str, dict[str, float]] = {}
    for path in sorted((build / "runs").glob("*.json")) if (build / "runs").is_dir() else []:
        runs[f"{path.stem} (this machine)"] = json.loads(path.read_text())
    for path in sorted(MEASUREMENTS.glob("*.json")) if MEASUREMENTS.is_dir() else []:
        data = json.loads(path.read_text())
        runs[data.get("label", path.stem)] = data.get("seconds", {})
    return runs


def _metric_cells(res: NotebookResult, ranges: dict) -> str:
    expected = expected_for(ranges, res.name, res.profile)
    parts = []
    for k, v in res.metrics.items():
        shown = f"{v:.4g}" if isinstance(v, float) else str(v)
        rng = f" (expected {format_range(expected[k])})" if k in expected else ""
        parts.append(f"{k} = {shown}{rng}")
    return "; ".join(parts) or "-"


def _status_text(r: NotebookResult) -> str:
    return r.status + (f": {r.error}" if r.error else "") + "".join(f"; {p}" for p in r.problems)


def write_report(results: list[NotebookResult], build: Path, ranges: dict) -> Path:
    """Write report.md and report.html under ``build``; returns the markdown path."""
    import platform

    import torch

    from .report_html import report_table, seconds_chart

    build.mkdir(parents=True, exist_ok=True)
    machine = (f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
               f"torch {torch.__version__}. Generated {time.strftime('%Y-%m-%d %H:%M:%S')}.")
    rows = ["| notebook | profile | device | seconds | status | metrics (expected range) |",
            "|---|---|---|---|---|---|"]
    for r in results:
        rows.append(f"| {r.name} | {r.profile or '-'} | {r.device or '-'} | {r.seconds:.1f} | "
                    f"{_status_text(r).replace('|', '/')} | {_metric_cells(r, ranges).replace('|', '/')} |")
    ok = sum(r.status == "ok" for r in results)
    md = f"# Course run report\n\n{machine}\n\n" + "\n".join(rows) + f"\n\n{ok} of {len(results)} notebooks ok.\n"
    (build / "report.md").write_text(md, encoding="utf-8")
    site = build / "site"
    link = (lambda name: f"site/{name}.html" if (site / f"{name}.html").exists() else None)
    browse = ("<p>Executed lessons: <a href='site/index.html'>the course site</a>.</p>" if (site / "index.html").exists()
              else "<p>Build the course site (<code>make site</code>) to read the executed lessons.</p>")
    page = ("<!doctype html><meta charset='utf-8'><title>Course run report</title>"
            "<style>body{font-family:sans-serif;margin:2em;max-width:80em}</style>"
            f"<h1>Course run report</h1><p>{html.escape(machine)}</p>{browse}"
            f"{report_table(results, ranges, link)}<h2>Seconds per lesson</h2>{seconds_chart(read_runs(build))}")
    (build / "report.html").write_text(page, encoding="utf-8")
    return build / "report.md"
