"""Run every lesson with papermill and write the run report: ``build/report.md`` and ``report.html``.

This is what ``make run`` / ``course run`` does: one row per notebook with profile, device, seconds,
status, and each recorded metric beside its expected range (from ``tests/expected/NN_topic.toml``); the
HTML page draws each number against its range and charts the seconds per lesson of every profile run so
far (``build/runs/<profile>.json``, plus committed measurements in ``docs/measurements/``). Executed
notebooks stay in ``build/executed/``; ``course site`` turns them into the course site.

A rehearsal (``course run --data shapes``: light/full on the shapes world at real sizes) is shown as such,
e.g. profile ``light (rehearsal)``; its numbers are not checked against the real profile's ranges (made-up
data, random weights), and its timings go to ``build/runs/<profile>-rehearsal.json``. Each result also has
the CPU seconds (user + sys) of its kernel, which a busy machine inflates less than the wall clock.
"""
from __future__ import annotations

import html
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .nbtools import ROOT, lesson_notebooks
from ..host import env_var
from ..record import check, expected_for, format_range, load_ranges, read_metrics

__all__ = ["NotebookResult", "execute", "result_from_executed", "run_all", "write_report", "read_runs",
           "children_cpu_seconds", "data_source"]

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
    cpu_seconds: float | None = None  # user + sys of the kernel (None where the OS cannot say)
    rehearsal: bool = False

    @property
    def profile_label(self) -> str:
        """'light (rehearsal)' for a rehearsal, else the profile."""
        return f"{self.profile or '-'} (rehearsal)" if self.rehearsal else (self.profile or "-")

    def expected(self, ranges: dict) -> dict:
        """The ranges this result's numbers are held to: none for a rehearsal (made-up data, random weights)."""
        return {} if self.rehearsal else expected_for(ranges, self.name, self.profile)


def _banner(nb) -> dict[str, str]:
    """The setup banner's lines ('profile', 'device' ... -> rest of the line) from an executed notebook."""
    found: dict[str, str] = {}
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            text = out.get("text", "")
            if isinstance(text, list):
                text = "".join(text)
            for line in text.splitlines():
                key, _, rest = line.partition(" ")
                if key in ("profile", "device", "REHEARSAL:") and key not in found:
                    found[key] = rest.strip()
    return found


def _device_from(nb) -> str | None:
    device = _banner(nb).get("device")
    return device.split()[0].rstrip(",") if device else None


def _result(name: str, nb: dict, seconds: float, error: str, ranges: dict | None) -> NotebookResult:
    metrics, used = read_metrics(nb)
    banner = _banner(nb)
    res = NotebookResult(name, "ok", seconds, used, _device_from(nb), metrics, error=error,
                         rehearsal="(rehearsal)" in banner.get("profile", ""))
    if res.profile is None and banner.get("profile"):
        res.profile = banner["profile"].split()[0]
    if ranges is None:
        ranges = load_ranges(RANGES) if RANGES.exists() else {}
    res.problems = check(metrics, res.expected(ranges)) if metrics else []
    if error:
        res.status = "failed"
    elif not metrics and not res.rehearsal:
        res.status = "no-metrics"
    elif res.problems:
        res.status = "out-of-range"
    return res


def children_cpu_seconds() -> float | None:
    """user + sys CPU seconds of this process's finished (waited-for) children and their descendants."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def data_source(source: str | None):
    """Set ``$COURSE_DATA_SOURCE`` for the kernels started inside (None: leave it as it is)."""
    from ..data.source import ENV, SOURCES

    if source is not None and source not in SOURCES:
        raise ValueError(f"data={source!r}: use one of {', '.join(SOURCES)}")
    with env_var(ENV, source):
        yield


_START_TRIES = 3  # as the grading runner does (grading.runner.START_TRIES)


def _died_at_start(exc: BaseException) -> bool:
    """The kernel died before running anything: on a busy machine another process can take one of the ports
    jupyter_client picked for it before it binds them. Not the lesson's fault: worth starting again."""
    return isinstance(exc, RuntimeError) and "before replying to kernel_info" in str(exc)


def execute(path: Path, out_dir: Path, profile: str = "auto", seed: int = 0,
            timeout: int = 1800, ranges: dict | None = None) -> NotebookResult:
    """Execute one notebook with papermill into ``out_dir`` and check its recorded metrics."""
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / path.name
    for attempt in range(1, _START_TRIES + 1):
        t0, cpu0 = time.perf_counter(), children_cpu_seconds()
        error = ""
        try:  # no live widgets in a saved run: they would wait on a front end that never comes ($COURSE_LIVE)
            with env_var("COURSE_LIVE", os.environ.get("COURSE_LIVE", "0")):
                pm.execute_notebook(str(path), str(out), parameters={"profile": profile, "seed": seed},
                                    kernel_name="python3", cwd=str(path.parent), progress_bar=False,
                                    execution_timeout=timeout)
        except Exception as exc:  # papermill raises PapermillExecutionError with the cell's traceback
            error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
            if _died_at_start(exc) and attempt < _START_TRIES:
                print(f"  the kernel died before its first reply ({exc}); starting {path.name} again", flush=True)
                continue
        break
    seconds, cpu1 = time.perf_counter() - t0, children_cpu_seconds()
    nb = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {"cells": []}
    res = _result(path.stem, nb, seconds, error, ranges)
    res.cpu_seconds = None if cpu0 is None or cpu1 is None else cpu1 - cpu0  # the kernel is reaped by now
    return res


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
            seed: int = 0, data: str | None = None, timeout: int = 1800, on_start=None) -> list[NotebookResult]:
    """Execute the lessons (all, or those whose name starts with one of ``only``) and write the report.

    ``data="shapes"`` with profile light/full is a rehearsal (``$COURSE_DATA_SOURCE`` for the kernels).
    ``on_start(path)`` is called before each lesson.
    """
    build = Path(build or os.environ.get("COURSE_BUILD", ROOT / "build"))
    ranges = load_ranges(RANGES) if RANGES.exists() else {}
    results = []
    what = f"profile {profile}" + (f", data {data}" if data else "")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # the kernels' OpenMP threads sleep when idle (config.setup)
    with data_source(data):
        for path in lesson_notebooks():
            if only and not any(path.stem.startswith(o) for o in only):
                continue
            if on_start is not None:
                on_start(path)
            print(f"running {path.name} ({what}) ...", flush=True)
            res = execute(path, build / "executed", profile, seed, timeout=timeout, ranges=ranges)
            cpu = f", {res.cpu_seconds:.0f} CPU s" if res.cpu_seconds is not None else ""
            print(f"  {res.status} in {res.seconds:.1f}s{cpu}, profile {res.profile_label}, device {res.device}"
                  + (f"\n  {res.error}" if res.error else "")
                  + "".join(f"\n  {p}" for p in res.problems), flush=True)
            results.append(res)
    _save_run(results, build)
    write_report(results, build, ranges)
    return results


def _save_run(results: list[NotebookResult], build: Path) -> None:
    """Add these timings to ``build/runs/<profile>.json`` (a rehearsal: ``<profile>-rehearsal.json``)."""
    by_profile: dict[str, dict[str, float]] = {}
    for r in results:
        if r.profile and r.status != "failed":
            key = f"{r.profile}-rehearsal" if r.rehearsal else r.profile
            by_profile.setdefault(key, {})[r.name] = round(r.seconds, 1)
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
    expected = res.expected(ranges)
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
    rows = ["| notebook | profile | device | seconds | minutes | CPU s | status | metrics (expected range) |",
            "|---|---|---|---|---|---|---|---|"]
    for r in results:
        cpu = f"{r.cpu_seconds:.0f}" if r.cpu_seconds is not None else "-"
        rows.append(f"| {r.name} | {r.profile_label} | {r.device or '-'} | {r.seconds:.1f} | {r.seconds / 60:.1f} | {cpu} | "
                    f"{_status_text(r).replace('|', '/')} | {_metric_cells(r, ranges).replace('|', '/')} |")
    ok = sum(r.status == "ok" for r in results)
    note = ""
    if any(r.rehearsal for r in results):
        from ..data.source import REHEARSAL_NOTE
        note = (f"{REHEARSAL_NOTE}. Each lesson ran its profile's real sizes and code path on made-up data: "
                "the timings are real; the numbers say nothing about the real datasets and are not checked "
                "against the profile's ranges.")
    md = (f"# Course run report\n\n{machine}\n\n" + (f"**{note}**\n\n" if note else "") + "\n".join(rows)
          + f"\n\n{ok} of {len(results)} notebooks ok.\n")
    (build / "report.md").write_text(md, encoding="utf-8")
    site = build / "site"
    link = (lambda name: f"site/{name}.html" if (site / f"{name}.html").exists() else None)
    browse = ("<p>Executed lessons: <a href='site/index.html'>the course site</a>.</p>" if (site / "index.html").exists()
              else "<p>Build the course site (<code>make site</code>) to read the executed lessons.</p>")
    page = ("<!doctype html><meta charset='utf-8'><title>Course run report</title>"
            "<style>body{font-family:sans-serif;margin:2em;max-width:80em}</style>"
            f"<h1>Course run report</h1><p>{html.escape(machine)}</p>"
            + (f"<p><strong>{html.escape(note)}</strong></p>" if note else "") + f"{browse}"
            f"{report_table(results, ranges, link)}<h2>Seconds per lesson</h2>{seconds_chart(read_runs(build))}")
    (build / "report.html").write_text(page, encoding="utf-8")
    return build / "report.md"
