"""Where the course keeps its files: the data cache, the weights cache inside it, and the build folder.

The lowest layer of ``course_utils``: it imports nothing from the package, so ``config`` (setup),
``data`` and ``transfer`` can all use it without importing each other. Nothing runs on import.

    data_dir()     $COURSE_DATA, else /content/data on Colab, else the user cache dir (datasets, shapes world)
    weights_dir()  data_dir()/weights (the course's own checkpoints; torchvision and open_clip weights too
                   where the course cache was chosen: $COURSE_DATA or Colab, see use_weights_dir)
    build_dir()    $COURSE_BUILD, else ./build (executed notebooks, reports)
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["on_colab", "data_dir", "build_dir", "weights_dir", "use_weights_dir", "course_cache_chosen"]


def on_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def data_dir() -> Path:
    """The one dataset/weights cache: $COURSE_DATA, else /content/data on Colab, else the user cache dir."""
    if os.environ.get("COURSE_DATA"):
        return Path(os.environ["COURSE_DATA"]).expanduser()
    if on_colab():
        return Path("/content/data")
    from platformdirs import user_cache_dir
    return Path(user_cache_dir("cv-course")) / "data"


def build_dir() -> Path:
    """Where executed notebooks, checkpoints and reports go: $COURSE_BUILD, else ./build."""
    return Path(os.environ.get("COURSE_BUILD", "build")).expanduser()


def weights_dir() -> Path:
    """Cache for pretrained weights (torchvision, open_clip): data_dir()/weights."""
    return data_dir() / "weights"


def course_cache_chosen() -> bool:
    """True where the course cache was put somewhere on purpose: $COURSE_DATA, or Colab's /content/data."""
    return bool(os.environ.get("COURSE_DATA")) or on_colab()


def use_weights_dir() -> Path:
    """Where torchvision (TORCH_HOME) and open_clip (HF_HOME) keep pretrained weights; returns TORCH_HOME's root.

    The learner's own caches come first: a TORCH_HOME or HF_HOME they set wins, and where the course cache
    is not chosen on purpose (no $COURSE_DATA, not Colab) both stay unset, so torch and Hugging Face use
    their usual places (~/.cache/torch, ~/.cache/huggingface): weights already there are not downloaded
    again and a Hugging Face login stays visible. Only with a chosen course cache (Colab's /content/data,
    a Drive folder in $COURSE_DATA, a class server) do unset ones point into :func:`weights_dir`.
    Call before the first weight download (setup() is the place).
    """
    if course_cache_chosen():
        os.environ.setdefault("TORCH_HOME", str(weights_dir() / "torch"))
        os.environ.setdefault("HF_HOME", str(weights_dir() / "huggingface"))
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "torch"  # torch.hub's default
