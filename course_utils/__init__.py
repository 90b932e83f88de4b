"""course_utils: the helpers the course notebooks import (data, training, models, metrics, plots, checks).

Two wings. Everything at this level is the **lesson library**: what a lesson imports and a learner reads
(``setup``/``record``, ``data/``, ``train/``, ``arch``, ``detection``, ``vit``, ``checks`` ...).
``machinery/`` is the **course machinery** behind the ``course`` command (running and reporting lessons,
the site, grading, rehearsals); no lesson imports it.

Importing this package does nothing but define names: setup() seeds, picks the device and the profile.
Submodules (``course_utils.data``, ``.train``, ``.plots`` ...) load on first use.
"""
from __future__ import annotations

import importlib

from .config import Config, setup
from .record import record

# Submodules, loaded on first attribute access (``course_utils.data``); kept in alphabetical order.
_LAZY = {
    "arch", "centernet", "checks", "classifier_plots", "clip", "darknet", "data", "detection", "host",
    "localization", "metrics", "paths", "plots", "proposals", "robustness", "segmentation", "ssl", "train",
    "transfer", "vit",
}
__all__ = ["Config", "setup", "record", *sorted(_LAZY)]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'course_utils' has no attribute {name!r}")
