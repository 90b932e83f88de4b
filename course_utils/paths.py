"""Where the course keeps its files: the data cache, the weights cache inside it, and the build folder.

The lowest layer of ``course_utils``: it imports nothing from the package, so ``config`` (setup),
``data`` and ``transfer`` can all use it without importing each other. Nothing runs on import.

    data_dir()     $COURSE_DATA, else /content/data on Colab, else the user cache dir (datasets, shapes world)
    weights_dir()  data_dir()/weights (torchvision and open_clip weights, the course's own checkpoints)
    build_dir()    $COURSE_BUILD, else ./build (executed notebooks, reports)
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["on_colab", "data_dir", "build_dir", "weights_dir", "use_weights_dir"]


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


def use_weights_dir() -> Path:
    """Point TORCH_HOME (torchvision weights) and HF_HOME (open_clip via the HF hub) into :func:`weights_dir`.

    Values the user already set win. Call before the first weight download (setup() is the place).
    """
    os.environ.setdefault("TORCH_HOME", str(weights_dir() / "torch"))
    os.environ.setdefault("HF_HOME", str(weights_dir() / "huggingface"))
    return Path(os.environ["TORCH_HOME"])
