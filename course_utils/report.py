"""Run every lesson with papermill, render HTML, and write ``build/report.md`` / ``report.html``.

This is what ``make run`` / ``course run`` does: one row per notebook with profile, device, seconds,
status, and each recorded metric beside its expected range (from ``tests/expected/NN_topic.toml``).
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

__all__ = ["NotebookResult", "execute", "run_all", "write_report"]

RANGES = ROOT / "tests" / "expected"


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
    metrics, used = read_metrics(nb)
    res = NotebookResult(path.stem, "ok", seconds, used, _device_from(nb), metrics, error=error)
    if ranges is None:
        ranges = load_ranges(RANGES) if RANGES.exists() else {}
    expected = expected_for(ranges, path.stem, used)
    res.problems = check(metrics, expected) if metrics else []
    if error:
        res.status = "failed"
    elif not metrics:
        res.status = "no-metrics"
    elif res.problems:
        res.status = "out-of-range"
    return res


def _render_html(executed: Path, html_dir: Path) -> None:
    from nbconvert import HTMLExporter

    html_dir.mkdir(parents=True, exist_ok=True)
    body, _ = HTMLExporter().from_filename(str(executed))
    (html_dir / executed.with_suffix(".html").name).write_text(body, encoding="utf-8")


def run_all(profile: str = "auto", only: list[str] | None = None, build: Path | None = None,
            seed: int = 0, html_out: bool = True) -> list[NotebookResult]:
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
        if html_out and (build / "executed" / path.name).exists():
            _render_html(build / "executed" / path.name, build / "html")
        results.append(res)
    write_report(results, build, ranges)
    return results


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

    build.mkdir(parents=True, exist_ok=True)
    head = (f"# Course run report\n\nMachine: {platform.machine()}, {os.cpu_count()} CPUs, "
            f"python {platform.python_version()}, torch {torch.__version__}. "
            f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')}.\n\n")
    rows = ["| notebook | profile | device | seconds | status | metrics (expected range) |",
            "|---|---|---|---|---|---|"]
    for r in results:
        rows.append(f"| {r.name} | {r.profile or '-'} | {r.device or '-'} | {r.seconds:.1f} | "
                    f"{_status_text(r).replace('|', '/')} | {_metric_cells(r, ranges).replace('|', '/')} |")
    ok = sum(r.status == "ok" for r in results)
    md = head + "\n".join(rows) + f"\n\n{ok} of {len(results)} notebooks ok.\n"
    (build / "report.md").write_text(md, encoding="utf-8")
    cells = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (
            f"{r.name}", r.profile or "-", r.device or "-", f"{r.seconds:.1f}",
            _status_text(r), _metric_cells(r, ranges))) + "</tr>"
        for r in results)
    page = ("<!doctype html><meta charset='utf-8'><title>Course run report</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:4px 8px}"
            "table{border-collapse:collapse}</style>"
            f"<h1>Course run report</h1><p>{html.escape(head.splitlines()[2])}</p><table><tr>"
            + "".join(f"<th>{h}</th>" for h in ("notebook", "profile", "device", "seconds", "status",
                                                 "metrics (expected range)"))
            + f"</tr>{cells}</table><p>{ok} of {len(results)} notebooks ok. Executed notebooks: "
            "<a href='html/'>html/</a></p>")
    (build / "report.html").write_text(page, encoding="utf-8")
    return build / "report.md"
