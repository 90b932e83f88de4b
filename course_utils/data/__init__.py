"""Datasets by name and profile: real data (light/full) or the shapes world in the same on-disk formats (smoke).

    imgs = load_tensors("cifar10", "train", cfg, limit=2000)   # ImageSet: uint8 (N, 3, 32, 32) + labels
    ds = get_dataset("voc_det", "train", cfg, transforms=...)  # torchvision-format dataset + tv_tensors

Modules: ``shapes`` (the generator), ``cifar`` (pickle batches), ``voc``/``coco``/``captions``/``pets``
(files in those formats), ``catalog`` (real datasets, checksums), ``source`` (real or rehearsal), ``rehearsal`` (the shapes
world at real size), ``registry`` (fetch or stand in), ``download`` (resumable, verified),
``transforms`` (v2 pipelines), ``stats`` (per-channel mean/std), ``loaders``. Heavy imports happen on first use.
"""
from __future__ import annotations

import importlib

from ..paths import use_weights_dir, weights_dir
from .cache import DataError
from .registry import is_cached

__all__ = ["DataError", "is_cached", "weights_dir", "use_weights_dir", "ImageSet", "load_tensors", "get_dataset",
           "ensure", "train_transforms", "eval_transforms", "norm_stats", "channel_stats", "NAMES", "make_loader"]

_LAZY = {"ImageSet": "cifar", "load_tensors": "datasets", "get_dataset": "datasets", "NAMES": "datasets",
         "ensure": "registry", "train_transforms": "transforms", "eval_transforms": "transforms",
         "norm_stats": "transforms", "channel_stats": "stats", "make_loader": "loaders"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'course_utils.data' has no attribute {name!r}")
