"""Profiles, seeding and device choice: everything a notebook's setup cell decides, once.

A notebook calls ``cfg = course_utils.setup(profile, seed)``. Nothing here runs on import. Paths come
from :mod:`course_utils.paths` and machine facts (cores, network) from :mod:`course_utils.host`, the
layer below; ``data_dir``, ``build_dir``, ``on_colab`` and ``usable_cores`` are re-exported here.

Profiles:
    smoke  offline, synthetic data in the real on-disk formats, tiny models, seconds on a CPU.
    light  real data (subsets), minutes on a laptop or Binder CPU.
    full   the real recipe, on a GPU, with real datasets and pretrained weights.
    auto   picks one of the above and says why.

The profile says how much work; the data source says which data (``course_utils.data.rehearsal``):
light and full read the real datasets unless ``data="shapes"`` (or ``$COURSE_DATA_SOURCE=shapes``, which
``course run --data shapes`` sets) asks for a **rehearsal**: the profile's real sizes and code path on the
shapes world generated at the real datasets' sizes, with random instead of pretrained weights. ``auto``
never picks a rehearsal.
"""
from __future__ import annotations

import os
import platform
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from .host import keep_freed_memory, memory_limit, usable_cores
from .host import online as _online
from .paths import build_dir, data_dir, on_colab, use_weights_dir

__all__ = ["PROFILES", "Config", "setup", "resolve_profile", "pick_device", "data_dir", "build_dir",
           "seed_everything", "usable_cores", "on_colab"]

PROFILES = ("smoke", "light", "full")


@dataclass
class Config:
    """What setup decided: profile (and why), device, seed, paths. Saved with results and checkpoints."""

    profile: str
    reason: str
    seed: int
    device: str
    data_dir: Path
    build_dir: Path
    on_colab: bool = False
    data_source: str = "real"  # real | shapes (smoke is always shapes; light/full on shapes = a rehearsal)

    @property
    def smoke(self) -> bool:
        return self.profile == "smoke"

    @property
    def rehearsal(self) -> bool:
        """True for light/full on the shapes world at real sizes, with random weights."""
        return self.profile != "smoke" and self.data_source == "shapes"

    @property
    def profile_label(self) -> str:
        """The profile as the banner and the report show it, e.g. 'light (rehearsal)'."""
        return f"{self.profile} (rehearsal)" if self.rehearsal else self.profile

    def pick(self, smoke=None, light=None, full=None):
        """Return the value for the active profile, e.g. ``epochs = cfg.pick(smoke=1, light=5, full=30)``."""
        value = {"smoke": smoke, "light": light, "full": full}[self.profile]
        if value is None:
            raise ValueError(f"no value given for profile {self.profile!r}")
        return value

    def run_dir(self, name: str, settings: dict | None = None):
        """Checkpoint folder for a run that trains for minutes (``fit(checkpoint_dir=..., resume=True)``).

        Keyed by ``settings`` plus profile, seed and data source (:mod:`course_utils.runs`). None in smoke:
        those runs take seconds, and may run where the cache is read-only (grading).
        """
        if self.smoke:
            return None
        from .runs import run_dir
        return run_dir(name, {**(settings or {}), "profile": self.profile, "seed": self.seed,
                              "data_source": self.data_source})

    def as_dict(self) -> dict:
        return {"profile": self.profile, "reason": self.reason, "seed": self.seed, "device": self.device,
                "data_dir": str(self.data_dir), "data_source": self.data_source, "rehearsal": self.rehearsal}


def pick_device(prefer: str | None = None) -> str:
    """cuda > mps > cpu, unless ``prefer`` (or $COURSE_DEVICE) names one."""
    import torch

    prefer = prefer or os.environ.get("COURSE_DEVICE")
    if prefer:
        return prefer
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


SERVER_MIB = 512  # what a Jupyter server and the page cache keep beside a kernel (Binder: 2 GiB = 1.5 + 0.5)


def resolve_profile(requested: str, device: str, datasets: tuple[str, ...] = (),
                    data_present=None, light_peak_mib: float | None = None,
                    memory_bytes: int | None = None) -> tuple[str, str]:
    """Turn ``requested`` (smoke/light/full/auto) into a concrete profile and a one-line reason.

    ``auto`` is overridden by $COURSE_PROFILE; otherwise: full (GPU and data reachable), light (CPU and
    data reachable), smoke (no data reachable, or a download over 1 GB nobody asked for: VOC on Binder or
    Colab starts no 1.9 GB download by itself). ``data_present(name) -> bool`` says if a dataset is cached.
    ``light_peak_mib`` (the lesson's measured light peak, written into its setup call by ``course nb sync``)
    against ``memory_bytes`` (default: :func:`host.memory_limit`): where light would not fit, with
    :data:`SERVER_MIB` left for the Jupyter server and the page cache (Binder's 2 GiB), auto picks smoke.
    """
    requested = (requested or "auto").lower()
    if requested == "auto" and os.environ.get("COURSE_PROFILE"):
        requested = os.environ["COURSE_PROFILE"].lower()
        if requested != "auto":
            _check(requested)
            return requested, "set by $COURSE_PROFILE"
    if requested != "auto":
        _check(requested)
        return requested, "asked for in the parameters cell"
    if not datasets:
        reachable, why = True, "this lesson needs no dataset"
    else:
        cached = data_present is not None and all(data_present(d) for d in datasets)
        if cached:
            reachable, why = True, f"datasets {', '.join(datasets)} are in the cache"
        elif _too_large(datasets, data_present):
            return "smoke", _too_large(datasets, data_present)
        elif _online():
            reachable, why = True, "dataset servers are reachable"
        else:
            reachable, why = False, "no network and datasets not cached (run `course data download NAME` online)"
    if not reachable:
        return "smoke", why
    if device == "cuda":
        return "full", f"GPU found and {why}"
    limit = memory_bytes if memory_bytes is not None else memory_limit()
    if light_peak_mib and limit and light_peak_mib > limit / 2 ** 20 - SERVER_MIB:
        return "smoke", (f"light needs about {light_peak_mib / 1024:.1f} GiB of memory (measured) and this machine "
                         f"allows {limit / 2 ** 30:.1f} GiB: running smoke; profile='light' tries light anyway")
    return "light", f"no GPU, {why}"


def _too_large(datasets: tuple[str, ...], data_present) -> str:
    """The reason to stay offline when a missing dataset's download is over 1 GB and not asked for, else ""."""
    from .data.catalog import REAL, ask_for_large, is_large, large_allowed, real_name

    if large_allowed():
        return ""
    for name in datasets:
        if is_large(name) and not (data_present is not None and data_present(name)):
            return (f"{REAL[real_name(name)].title} ({REAL[real_name(name)].size}) is not in the cache: "
                    f"running smoke (the shapes world) instead. {ask_for_large(name)}; then run this lesson again")
    return ""


def _check(profile: str) -> None:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: use one of {', '.join(PROFILES)} or 'auto'")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _passive_waits() -> None:
    """Make idle OpenMP threads sleep instead of spin (``OMP_WAIT_POLICY=PASSIVE``) unless the user chose.

    On a busy CPU (Binder, a shared server, a laptop running other things) a spinning thread takes the core
    its partner needs: measured on a busy 2-core machine, 2 spinning threads trained a small CNN at half the
    speed of 1 thread; passive waits gave 2 threads the CPU efficiency of 1. OpenMP reads the variable when
    torch first loads, so this only acts before the first ``import torch`` (a notebook's setup cell).
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _set_threads(profile: str) -> None:
    """Threads for CPU work: 1 for smoke (tiny ops, where thread hand-offs cost more than they save,
    and badly so on a busy machine), else every core this process may use. $OMP_NUM_THREADS wins."""
    import torch

    if os.environ.get("OMP_NUM_THREADS"):
        return
    if profile == "smoke":
        torch.set_num_threads(1)
        return
    torch.set_num_threads(usable_cores())


def setup(profile: str = "auto", seed: int = 0, datasets: tuple[str, ...] | list[str] = (),
          device: str | None = None, quiet: bool = False, data: str | None = None,
          light_peak_mib: float | None = None) -> Config:
    """Seed everything, choose the device and the profile, print one banner, return a :class:`Config`.

    ``data``: "real" or "shapes" (default: $COURSE_DATA_SOURCE, else real); light/full on "shapes" is a rehearsal.
    ``light_peak_mib``: the lesson's measured light peak memory (``course nb sync`` writes it from
    docs/measurements/): auto picks smoke where light would not fit (:func:`resolve_profile`).
    """
    _passive_waits()  # before torch loads OpenMP
    keep_freed_memory()  # large tensors reuse freed memory instead of page-faulting afresh (glibc)
    import numpy as np
    import torch

    from .data.source import REHEARSAL_NOTE, resolve_source  # config sits above data: data never imports config
    from .record import reset as _reset_records
    from .runs import checkpoint_note

    dev = pick_device(device)
    datasets = tuple(datasets)
    present = None
    if datasets:
        from .data import is_cached as present
    prof, reason = resolve_profile(profile, dev, datasets, present, light_peak_mib)
    source = resolve_source(prof, data)
    if dev == "cpu":
        _set_threads(prof)
    seed_everything(seed)
    cfg = Config(profile=prof, reason=reason, seed=seed, device=dev, data_dir=data_dir(),
                 build_dir=build_dir(), on_colab=on_colab(), data_source=source)
    use_weights_dir()  # the learner's torch/HF caches, or the course cache where that was chosen ($COURSE_DATA, Colab)
    _reset_records(cfg)
    if not quiet:
        gpu = f" ({torch.cuda.get_device_name(0)})" if dev == "cuda" else ""
        note = (f"{REHEARSAL_NOTE} - {prof}'s sizes and code path on made-up data: timings and code paths,"
                " not results\n") if cfg.rehearsal else ""
        print(f"{note}profile  {cfg.profile_label:<6} - {reason}\n"
              f"device   {dev}{gpu}, {torch.get_num_threads()} CPU threads\n"
              f"seed     {seed}\n"
              f"data     {cfg.data_dir}\n"
              + (f"{checkpoint_note()}\n" if not cfg.smoke else "") +
              f"versions python {platform.python_version()}, torch {torch.__version__}, "
              f"numpy {np.__version__}")
    return cfg
