"""``course rehearse``: run every lesson in a real profile on the shapes world at real sizes, and keep the times.

    course rehearse                       # light, 2 threads (Binder's size), every lesson
    course rehearse --only 09 10          # just these; their rows are merged into the committed table
    course rehearse --profile full        # on a GPU: every lesson's full rehearsal
    course rehearse --table               # print the README table from docs/measurements/ and stop

What it does: generates the shapes world at the real sizes of the datasets the lessons declare (once, so
that generation is not counted in a lesson's time), runs ``course run --profile P --data shapes``
(papermill; the report says ``P (rehearsal)``), then merges the wall and CPU seconds and the peak memory per lesson into
``docs/measurements/rehearse-<profile>.json`` ({"label", "hardware", "torch", "date", "seeds", "seconds",
"cpu_seconds", "peak_rss_mib", ...}), which the report's seconds chart, the README table and each lesson's
"what you need" block (``course nb sync``) read.

Peak memory: while a lesson runs, a thread samples the resident memory (RSS) of every process below this
one (the kernel and its children, e.g. DataLoader workers) twice a second and keeps the largest sum. Binder
caps a session at 2 GiB, shared with the Jupyter server: a light lesson's kernel should stay <= 1.5 GiB
(``BINDER_KERNEL_MIB``). To check it under the cap itself, run the rehearsal inside a memory cgroup (v1, as
root): ``mkdir /sys/fs/cgroup/memory/binder && echo 2G > .../binder/memory.limit_in_bytes && echo $$ >
.../binder/cgroup.procs`` in the shell that then runs ``course rehearse``. ``--memory-only`` merges only
the peaks (a run on a busy machine keeps the committed times) and runs the kernels as on Binder: no
DataLoader workers (a forked worker's RSS would count the pages it shares with the kernel again), and
``$COURSE_MEMORY_LIMIT=2G`` (so ``setup`` leaves glibc's malloc defaults alone, as it does under Binder's cap).
"""
from __future__ import annotations

import json
import os
import platform
import re
import tempfile
import threading
import time
from pathlib import Path

from .nbtools import lesson_notebooks
from .needs import _DATASETS, BINDER_KERNEL_MIB, MEASUREMENTS

__all__ = ["MEASUREMENTS", "BUDGET_MINUTES", "BINDER_KERNEL_MIB", "PeakMemory", "lesson_datasets", "prepare_data", "hardware", "merge_measurements",
           "measurements_table", "rehearse"]

BUDGET_MINUTES = {"light": 10.0}  # per lesson, on 2 CPU cores (what Binder gives)


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


class PeakMemory:
    """Sample the summed RSS of this process's descendants (a lesson's kernel and its children) in a thread.

    ``start(name)`` begins a lesson's watch (ending the previous one); ``peaks_mib`` = {name: MiB}.
    """

    def __init__(self, every: float = 0.5):
        import psutil  # ipykernel's dependency: there wherever a kernel can run

        self._me, self._every, self._name = psutil.Process(), every, None
        self.peaks_mib: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def tree_rss(self) -> int:
        import psutil

        total = 0
        for proc in self._me.children(recursive=True):
            try:
                total += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass  # a worker that just ended
        return total

    def start(self, name: str) -> None:
        self._name = name
        self.peaks_mib.setdefault(name, 0.0)
        if not self._thread.is_alive():
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            name = self._name
            if name is not None:
                self.peaks_mib[name] = max(self.peaks_mib[name], self.tree_rss() / 2 ** 20)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


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
                       loads: dict[str, float], peaks: dict[str, float] | None = None,
                       memory_only: bool = False) -> dict:
    """Merge these results' seconds into the committed table ``path`` (other lessons' rows are kept).

    ``memory_only``: merge only the peak memory (a run on a busy machine: its times are not the lesson's).
    """
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
    keys = ("seconds", "cpu_seconds", "peak_rss_mib", "dates", "load_average")
    for key in keys:
        table[key] = dict(old.get(key, {}))
    if memory_only:  # the times (and the machine and torch they were measured with) stay as they were
        table.update({k: old[k] for k in ("label", "hardware", "threads", "torch", "date") if k in old})
        table["memory"] = {"hardware": hardware(device), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
                           "how": "as on Binder: no DataLoader workers, $COURSE_MEMORY_LIMIT=2G"}
    for r in done:
        if memory_only:
            if peaks and peaks.get(r.name):
                table["peak_rss_mib"][r.name] = round(peaks[r.name])
            continue
        table["seconds"][r.name] = round(r.seconds, 1)
        if r.cpu_seconds is not None:
            table["cpu_seconds"][r.name] = round(r.cpu_seconds, 1)
        table["dates"][r.name] = table["date"]
        if r.name in loads:
            table["load_average"][r.name] = round(loads[r.name], 1)
        if peaks and peaks.get(r.name):
            table["peak_rss_mib"][r.name] = round(peaks[r.name])
    for key in keys:
        table[key] = dict(sorted(table[key].items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(table, indent=1) + "\n")
    return table


def _gib(mib: float | None) -> str:
    return "to be measured" if mib is None else f"{mib / 1024:.2f} GiB"


def measurements_table(folder: Path = MEASUREMENTS, lessons: list[str] | None = None) -> str:
    """The README table: one row per lesson, wall and CPU minutes of each committed rehearsal."""
    tables = [json.loads(p.read_text()) for p in sorted(folder.glob("rehearse-*.json"))] if folder.is_dir() else []
    lessons = lessons or sorted({n for t in tables for n in t.get("seconds", {})} | {p.stem for p in lesson_notebooks()})
    head = "| lesson | " + " | ".join(f"{t['profile']} rehearsal: wall min (CPU min) | {t['profile']}: kernel's "
                                     "peak memory" for t in tables) + " |"
    rows = [head, "|---|" + "---|---|" * len(tables)]
    for name in lessons:
        cells = []
        for t in tables:
            s, cpu = t.get("seconds", {}).get(name), t.get("cpu_seconds", {}).get(name)
            cells.append("to be measured" if s is None else f"{s / 60:.1f}" + (f" ({cpu / 60:.1f})" if cpu else ""))
            cells.append(_gib(t.get("peak_rss_mib", {}).get(name)))
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    notes = []
    for t in tables:
        dates = sorted(t.get("dates", {}).values()) or [t["date"]]
        when = dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"
        notes.append(f"{t['profile']} rehearsal: {t['hardware']}, {t.get('threads') or 'all'} torch threads, "
                     f"torch {t['torch']}, measured {when}")
        if t.get("memory"):
            m = t["memory"]
            notes.append(f"{t['profile']} peak memory: {m['hardware']}, torch {m['torch']}, {m['how']}, "
                         f"measured {m['date']}")
    return "\n".join(rows) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def rehearse(profile: str = "light", only: list[str] | None = None, seed: int = 0, threads: int | None = 2,
             write: bool = True, folder: Path = MEASUREMENTS, timeout: int = 3600, memory_only: bool = False) -> int:
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

    memory = PeakMemory()

    def note_load(path: Path) -> None:  # how busy the machine was when the lesson started; watch its memory
        loads[path.stem] = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        memory.start(path.stem)

    # setup() leaves torch's threads alone when OMP_NUM_THREADS is set. A memory run loads data in the kernel,
    # as on Binder (no DataLoader workers there): a forked worker's RSS would count shared pages twice.
    workers = "0" if memory_only and not os.environ.get("COURSE_NUM_WORKERS") else None
    binder = "2G" if memory_only and not os.environ.get("COURSE_MEMORY_LIMIT") else None  # host.memory_limit
    # Checkpoints go to a folder of this run only: a lesson resuming an earlier rehearsal's finished training
    # would measure a few seconds and no training memory.
    with tempfile.TemporaryDirectory(prefix="course-rehearse-runs-") as runs, \
            env_var("OMP_NUM_THREADS", str(threads) if threads else None), env_var("COURSE_NUM_WORKERS", workers), \
            env_var("COURSE_MEMORY_LIMIT", binder), env_var("COURSE_RUNS", runs), memory:
        results = run_all(profile=profile, only=[p.stem for p in lessons], seed=seed, data="shapes",
                          timeout=timeout, on_start=note_load)
    peaks = memory.peaks_mib
    if write:
        path = folder / f"rehearse-{profile}.json"
        merge_measurements(path, profile, results, seed, threads, loads, peaks, memory_only)
        print(f"\nwrote {path}")
    budget = BUDGET_MINUTES.get(profile)
    print(f"\n{'lesson':<32}{'status':<10}{'wall min':>9}{'CPU min':>9}{'peak MiB':>9}{'load':>6}")
    for r in results:
        cpu = f"{r.cpu_seconds / 60:9.1f}" if r.cpu_seconds is not None else f"{'-':>9}"
        over = "  over budget" if budget and r.seconds / 60 > budget else ""
        peak = peaks.get(r.name, 0.0)
        if profile == "light" and peak > BINDER_KERNEL_MIB:
            over += f"  over Binder's {BINDER_KERNEL_MIB} MiB"
        print(f"{r.name:<32}{r.status:<10}{r.seconds / 60:9.1f}{cpu}{peak:9.0f}"
              f"{loads.get(r.name, float('nan')):6.1f}{over}")
    if write:
        print("\nREADME table (paste under 'Measured run times'):\n\n" + measurements_table(folder))
    return 0 if all(r.status != "failed" for r in results) else 1
