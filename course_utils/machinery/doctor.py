"""``course doctor``: check the installation and say, for each problem, what to do."""
from __future__ import annotations

import importlib
import os
import sys

__all__ = ["doctor"]


def _line(ok: bool, what: str, fix: str = "") -> bool:
    print(f"[{'ok' if ok else '!!'}] {what}" + (f"\n     -> {fix}" if not ok and fix else ""))
    return ok


def doctor() -> int:
    """Print one line per check; return 0 when everything a lesson needs works."""
    ok = _line(sys.version_info >= (3, 10), f"python {sys.version.split()[0]}", "use Python 3.10 or newer")
    try:
        import torch
        import torchvision
        from torchvision.ops import nms

        nms(torch.zeros(1, 4), torch.zeros(1), 0.5)  # fails when torch and torchvision builds do not match
        ok &= _line(True, f"torch {torch.__version__}, torchvision {torchvision.__version__}")
    except Exception as exc:  # a mismatched torchvision raises RuntimeError on its first operator
        ok &= _line(False, f"torch/torchvision: {exc}",
                    "install matching builds, e.g. `pip install torch==2.14.1 torchvision==0.29.1`")
    for mod in ("numpy", "matplotlib", "skimage", "tqdm", "PIL", "pycocotools"):
        try:
            m = importlib.import_module(mod)
            ok &= _line(True, f"{mod} {getattr(m, '__version__', '')}")
        except ImportError:
            ok &= _line(False, f"{mod} missing", "run `pip install -e .` in the repository")
    for mod in ("papermill", "nbval", "nbgrader", "jupyterlab"):
        try:
            importlib.import_module(mod)
            _line(True, f"{mod} (for running/testing/grading)")
        except ImportError:
            _line(False, f"{mod} missing (only needed to run tests or grade)", "pip install -e '.[dev]'")
    from ..config import pick_device, resolve_profile
    from ..host import online
    from ..paths import data_dir

    dev = pick_device()
    _line(True, f"device: {dev}")
    d = data_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / ".write-test"
        probe.write_text("ok")
        probe.unlink()
        _line(True, f"data cache writable: {d}")
    except OSError as exc:
        ok &= _line(False, f"data cache {d}: {exc}", "set COURSE_DATA to a writable folder")
    _line(online(), "dataset servers reachable" if online() else "offline: lessons will use the smoke profile",
          "that is fine for learning the code; download data where you have a network: `course data download NAME`")
    prof, why = resolve_profile("auto", dev, ("cifar10",))
    _line(True, f"auto profile for a CIFAR-10 lesson: {prof} ({why})")
    if os.environ.get("COURSE_PROFILE"):
        _line(True, f"COURSE_PROFILE={os.environ['COURSE_PROFILE']} overrides 'auto'")
    print("all good" if ok else "fix the lines marked !! above")
    return 0 if ok else 1
