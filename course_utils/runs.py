"""Checkpoint folders that survive a disconnect: one per lesson, run and configuration.

A lesson that trains for minutes passes ``fit(..., checkpoint_dir=cfg.run_dir("07_resnet/recipe", recipe),
resume=True)``: ``fit`` saves ``last.pt`` after every epoch and, when the cell runs again (after a Colab
disconnect, a kernel restart, a closed laptop), continues from it. The folder's name ends in a hash of
everything that makes the run what it is (the run's own settings, profile, seed, data source), so a
changed setting starts a fresh run instead of resuming a stale one.

Where (first that applies):
    $COURSE_RUNS                                  if set
    /content/drive/MyDrive/cv-course/runs         on Colab with Google Drive mounted (survives the runtime)
    data_dir()/runs                               elsewhere (the course cache; on Colab it is lost with the runtime)
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from .paths import data_dir, on_colab

__all__ = ["DRIVE", "drive_mounted", "runs_dir", "run_key", "run_dir", "checkpoint_note"]

DRIVE = Path("/content/drive/MyDrive")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")


def drive_mounted(drive: Path = DRIVE) -> bool:
    """True on Colab when Google Drive is mounted (``drive.mount('/content/drive')``)."""
    return on_colab() and drive.is_dir()


def runs_dir(drive: Path = DRIVE) -> Path:
    """The folder that holds every run's checkpoints (see the module docstring for the order)."""
    if os.environ.get("COURSE_RUNS"):
        return Path(os.environ["COURSE_RUNS"]).expanduser()
    if drive_mounted(drive):
        return drive / "cv-course" / "runs"
    return data_dir() / "runs"


def run_key(settings: dict) -> str:
    """12 hex digits that change whenever any setting does (JSON with sorted keys; values via ``str``)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def run_dir(name: str, settings: dict, root: Path | None = None) -> Path:
    """``runs_dir()/name-<run_key(settings)>``; ``name`` is e.g. "07_resnet/recipe" (letters, digits, _ . - /)."""
    if not _NAME.match(name) or ".." in name:
        raise ValueError(f"run name {name!r}: use letters, digits, '_', '.', '-' and '/' between parts, "
                         "e.g. '07_resnet/recipe'")
    return (root or runs_dir()) / f"{name}-{run_key(settings)}"


def checkpoint_note() -> str:
    """One banner line: where checkpoints go, and on Colab how to make them outlive the runtime."""
    where = runs_dir()
    if on_colab() and not drive_mounted():
        return (f"checkpoints {where} (lost if Colab disconnects: first run `from google.colab import drive; "
                "drive.mount('/content/drive')` to keep them in Google Drive)")
    return f"checkpoints {where}"
