"""``course rehearse``: run every lesson in a real profile on the shapes world at real sizes, and keep the times.

    course rehearse                       # light, 2 threads (Binder's size), every lesson
    course rehearse --only 09 10          # just these; their rows are merged into the committed table
    course rehearse --profile full        # on a GPU: every lesson's full rehearsal
    course rehearse --table               # print the README table from docs/measurements/ and stop

What it does: generates the shapes world at the real sizes of the datasets the lessons declare (once, so
that generation is not counted in a lesson's time), runs ``course run --profile P --data shapes``
(papermill; the report says ``P (rehearsal)``), then merges the wall and CPU seconds per lesson into
``docs/measurements/rehearse-<profile>.json`` ({"label", "hardware", "torch", "date", "seeds", "seconds",
"cpu_seconds", ...}), which the report's seconds chart and the README table read.
"""
from __future__ import annotations

import json
import os
import platform
import re
import time
from pathlib import Path

from .nbtools import ROOT, lesson_notebooks

__all__ = ["MEASUREMENTS", "BUDGET_MINUTES", "lesson_datasets", "prepare_data", "hardware", "merge_measurements",
           "measurements_table", "rehearse"]

MEASUREMENTS = ROOT / "docs" / "measurements"
BUDGET_MINUTES = {"light": 10.0}  # per lesson, on 2 CPU cores (what Binder gives)
_DATASETS = re.compile(r"setup\([^)]*datasets=\(([^)]*)\)")


def lesson_datasets(path: Path) -> list[str]:
    """The dataset names a lesson's setup cell declares (``setup(profile, seed, datasets=("cifar10",))``)."""
    text = path.read_text(encoding="utf-8")
    found = []
    for group in _DATASETS.findall(text.replace('\\"', '"')):
        found += [n for n in re.findall(r"[\w]+", group) if n not in found]
    return found


def prepare_data(lessons: list[Path]) -> dict[str, float]:
    """Generate the real-size shapes world of every dataset these lessons declare; {real name: seconds}."""
    from ..data.catalog import real_name
    from ..data.rehearsal import real_root

    took = {}
    for name in dict.fromkeys(real_name(d) for p in lessons for d in lesson_datasets(p)):
        t0 = time.perf_counter()
        print(f"data {name}: {real_root(name)}", flush=True)
        took[name] = round(time.perf_counter() - t0, 1)
    return took


def hardware(device: str | None = None) -> str:
    """One line: CPU model, usable cores, memory, and the GPU when the runs used one."""
    from ..host import usable_cores

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2 ** 30:.0f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        mem = ""
    gpu = ""
    if device and device.startswith("cuda"):
        import torch
        gpu = f", GPU {torch.cuda.get_device_name(0)}"
    return f"{cpu}, {usable_cores()} cores{mem}{gpu}"


def merge_measurements(path: Path, profile: str, results: list, seed: int, threads: int | None,
                       loads: dict[str, float]) -> dict:
    """Merge these results' seconds into the committed table ``path`` (other lessons' rows are kept)."""
    import torch

    old = json.loads(path.read_text()) if path.is_file() else {}
    done = [r for r in results if r.status != "failed"]
    device = next((r.device for r in done if r.device), None)
    where = "GPU" if device and device.startswith("cuda") else f"{threads or 'all'} CPU threads"
    table = {
        "label": f"{profile} rehearsal ({where})",
        "profile": profile,
        "data": "shapes world at the real datasets' sizes and formats, random weights (course rehearse)",
        "hardware": hardware(device),
        "threads": threads,
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "seeds": sorted({*old.get("seeds", []), seed}),
    }
    for key in ("seconds", "cpu_seconds", "dates", "load_average"):
        table[key] = dict(old.get(key, {}))
    for r in done:
        table["seconds"][r.name] = round(r.seconds, 1)
        if r.cpu_seconds is not None:
            table["cpu_seconds"][r.name] = round(r.cpu_seconds, 1)
        table["dates"][r.name] = table["date"]
        if r.name in loads:
            table["load_average"][r.name] = round(loads[r.name], 1)
    for key in ("seconds", "cpu_seconds", "dates", "load_average"):
        table[key] = dict(sorted(table[key].items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(table, indent=1) + "\n")
    return table


def measurements_table(folder: Path = MEASUREMENTS, lessons: list[str] | None = None) -> str:
    """The README table: one row per lesson, wall and CPU minutes of each committed rehearsal."""
    tables = [json.loads(p.read_text()) for p in sorted(folder.glob("rehearse-*.json"))] if folder.is_dir() else []
    lessons = lessons or sorted({n for t in tables for n in t.get("seconds", {})} | {p.stem for p in lesson_notebooks()})
    head = "| lesson | " + " | ".join(f"{t['profile']} rehearsal: wall min (CPU min)" for t in tables) + " |"
    rows = [head, "|---|" + "---|" * len(tables)]
    for name in lessons:
        cells = []
        for t in tables:
            s, cpu = t.get("seconds", {}).get(name), t.get("cpu_seconds", {}).get(name)
            cells.append("to be measured" if s is None else f"{s / 60:.1f}" + (f" ({cpu / 60:.1f})" if cpu else ""))
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    notes = []
    for t in tables:
        dates = sorted(t.get("dates", {}).values()) or [t["date"]]
        when = dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"
        notes.append(f"{t['profile']} rehearsal: {t['hardware']}, {t.get('threads') or 'all'} torch threads, "
                     f"torch {t['torch']}, measured {when}")
    return "\n".join(rows) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def rehearse(profile: str = "light", only: list[str] | None = None, seed: int = 0, threads: int | None = 2,
             write: bool = True, folder: Path = MEASUREMENTS, timeout: int = 3600) -> int:
    """Run the lessons' ``profile`` rehearsal and merge their times into ``folder``; 0 when every lesson ran."""
    from ..host import env_var
    from .report import run_all

    if profile not in ("light", "full"):
        raise ValueError(f"a rehearsal runs light or full, not {profile!r} (smoke already runs on the shapes world)")
    lessons = [p for p in lesson_notebooks() if not only or any(p.stem.startswith(o) for o in only)]
    took = prepare_data(lessons)
    if took:
        print("shapes world ready: " + ", ".join(f"{k} {v:.0f} s" for k, v in took.items()))
    loads: dict[str, float] = {}

    def note_load(path: Path) -> None:  # how busy the machine was when the lesson started
        loads[path.stem] = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    # setup() leaves torch's threads alone when OMP_NUM_THREADS is set
    with env_var("OMP_NUM_THREADS", str(threads) if threads else None):
        results = run_all(profile=profile, only=[p.stem for p in lessons], seed=seed, data="shapes",
                          timeout=timeout, on_start=note_load)
    if write:
        path = folder / f"rehearse-{profile}.json"
        merge_measurements(path, profile, results, seed, threads, loads)
        print(f"\nwrote {path}")
    budget = BUDGET_MINUTES.get(profile)
    print(f"\n{'lesson':<32}{'status':<10}{'wall min':>9}{'CPU min':>9}{'load':>6}")
    for r in results:
        cpu = f"{r.cpu_seconds / 60:9.1f}" if r.cpu_seconds is not None else f"{'-':>9}"
        over = "  over budget" if budget and r.seconds / 60 > budget else ""
        print(f"{r.name:<32}{r.status:<10}{r.seconds / 60:9.1f}{cpu}{loads.get(r.name, float('nan')):6.1f}{over}")
    if write:
        print("\nREADME table (paste under 'Measured run times'):\n\n" + measurements_table(folder))
    return 0 if all(r.status != "failed" for r in results) else 1
