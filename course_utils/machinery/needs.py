"""Each lesson's "what you need" block, generated from the measurement files (never typed by hand).

    > **What you need** · download: CIFAR-10 163 MB · `light` on 2 CPU threads: 4.0 min, peak memory
    > 1.21 GiB · `full`: a GPU, time unmeasured · runs on: Binder, Colab, a laptop

``course nb sync`` writes it under the badge line of each lesson's first cell; tests/test_platforms.py
checks that every lesson's block is the one these files give. Sources: the datasets the setup cell declares
(sizes from ``data.catalog``), ``docs/measurements/rehearse-light.json`` (minutes and the kernel's peak
memory on the shapes world at real size, 2 threads) and ``rehearse-full.json`` where a GPU rehearsal was run.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from ..config import SERVER_MIB

# Below nbtools and rehearse (both import from here): nothing from the machinery is imported.
MEASUREMENTS = Path(__file__).resolve().parents[2] / "docs" / "measurements"
BINDER_KERNEL_MIB = 2048 - SERVER_MIB  # a kernel's share of Binder's 2 GiB, by the rule auto uses (config)
_DATASETS = re.compile(r"setup\([^)]*datasets=\(([^)]*)\)")

__all__ = ["BLOCK_RE", "datasets_of", "needs_block", "replace_block", "light_peak", "with_light_peak"]

BLOCK_RE = re.compile(r"^> \*\*What you need\*\*.*(?:\n> .*)*$", re.M)


def _table(folder: Path, profile: str) -> dict:
    path = folder / f"rehearse-{profile}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def datasets_of(nb) -> list[str]:
    """The dataset names the lesson's setup call declares (as ``rehearse.lesson_datasets``, from the cells)."""
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    return list(dict.fromkeys(n for group in _DATASETS.findall(text) for n in re.findall(r"\w+", group)))


def needs_block(name: str, datasets: list[str], folder: Path = MEASUREMENTS) -> str:
    """The block for lesson ``name`` (e.g. "07_resnet") that declares ``datasets``, from the files in ``folder``."""
    from ..data.catalog import REAL, is_large, real_name

    real = list(dict.fromkeys(real_name(d) for d in datasets))
    download = ", ".join(f"{REAL[k].title} {REAL[k].size}" for k in real) or "nothing"
    light, full = _table(folder, "light"), _table(folder, "full")
    minutes, peak = light.get("seconds", {}).get(name), light.get("peak_rss_mib", {}).get(name)
    light_text = (f"{minutes / 60:.1f} min" if minutes is not None else "time unmeasured") + ", " + \
                 (f"peak memory {peak / 1024:.2f} GiB" if peak is not None else "peak memory unmeasured")
    full_minutes = full.get("seconds", {}).get(name)
    full_text = f"{full_minutes / 60:.1f} min on a GPU" if full_minutes is not None else "meant for a GPU, unmeasured"
    where = ["Colab", "a laptop"]
    large = [k for k in real if is_large(k)]
    if large:
        binder = f"Binder in smoke (auto's choice: {', '.join(REAL[k].title for k in large)} is over 1 GB)"
    elif peak is not None and peak > BINDER_KERNEL_MIB:
        binder = (f"Binder in smoke (auto's choice: light's kernel needs {peak / 1024:.2f} GiB, over the "
                  f"{BINDER_KERNEL_MIB / 1024:.1f} GiB a Binder kernel has)")
    elif peak is None:
        binder = "Binder (memory unmeasured)"
    else:
        binder = "Binder"
    lines = [f"> **What you need** · download: {download} · `light` on 2 CPU threads: {light_text}",
             f"> · `full`: {full_text} · runs on: {binder}, {', '.join(where)}"]
    return "\n".join(lines)


def replace_block(source: str, block: str, badge_re: re.Pattern) -> str:
    """``source`` (a lesson's first cell) with ``block`` in place of the old one, else under the badge line."""
    if BLOCK_RE.search(source):
        return BLOCK_RE.sub(lambda m: block, source, count=1)
    badge = badge_re.search(source)
    if not badge:
        raise ValueError("the first cell has no badge line: run `course nb sync` to add it first")
    return source[:badge.end()] + "\n\n" + block + source[badge.end():]


def light_peak(name: str, folder: Path = MEASUREMENTS) -> int | None:
    """Lesson ``name``'s measured light peak memory in MiB (None: unmeasured)."""
    return _table(folder, "light").get("peak_rss_mib", {}).get(name)


_PEAK_ARG = re.compile(r",\s*light_peak_mib=[\d.]+")


def with_light_peak(source: str, peak: int | None) -> str:
    """A setup cell's source whose ``course_utils.setup(...)`` call passes ``light_peak_mib=peak`` (or none)."""
    source = _PEAK_ARG.sub("", source)
    if peak is None:
        return source
    call = source.find("course_utils.setup(")
    if call < 0:
        return source
    depth, i = 0, source.index("(", call)
    for i in range(i, len(source)):
        depth += {"(": 1, ")": -1}.get(source[i], 0)
        if depth == 0:
            break
    return source[:i] + f", light_peak_mib={peak}" + source[i:]

