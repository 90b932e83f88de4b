"""course_utils: the helpers the course notebooks import (data, training, metrics, plots, grading).

Importing this package does nothing but define names: setup() seeds, picks the device and the profile.
Submodules (``course_utils.data``, ``.train``, ``.plots`` ...) load on first use.
"""
from __future__ import annotations

import importlib

from .config import Config, setup
from .record import record

__all__ = ["Config", "setup", "record", "checks", "data", "train", "plots", "metrics", "grading", "nbtools", "transfer", "arch", "viz",
           "paths", "host", "rehearse"]
__version__ = "0.1.0"

_LAZY = {"checks", "data", "train", "plots", "metrics", "grading", "nbtools", "report", "cli", "transfer",
         "arch", "viz", "paths", "host", "rehearse"}


def __getattr__(name: str):
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'course_utils' has no attribute {name!r}")
