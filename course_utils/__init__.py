"""course_utils: the helpers the course notebooks import (data, training, metrics, plots, grading).

Importing this package does nothing but define names: setup() seeds, picks the device and the profile.
Submodules (``course_utils.data``, ``.train``, ``.plots`` ...) load on first use.
"""
from __future__ import annotations

import importlib

from .config import Config, setup
from .record import record

# Submodules, loaded on first attribute access (``course_utils.data``); kept in alphabetical order.
_LAZY = {
    "arch", "centernet", "checks", "classifier_plots", "cli", "clip", "darknet", "data", "detection",
    "grading", "host", "localization", "metrics", "nbtools", "paths", "plots", "proposals", "rehearse", "report",
    "report_html", "robustness", "segmentation", "site", "sitecheck", "ssl", "train", "transfer", "vit",
}
__all__ = ["Config", "setup", "record", *sorted(_LAZY - {"cli"})]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'course_utils' has no attribute {name!r}")
