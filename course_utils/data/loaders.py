"""DataLoaders for the file-based datasets (VOC, COCO, Pets ...) that work the same on Linux, macOS and Windows.

macOS and Windows start DataLoader workers with ``spawn``: the dataset, its transforms and the collate
function are pickled, so everything here is a module-level function or class (no lambdas). The whole-split
GPU tensor loader for small images lives in ``course_utils.train.loader``.
"""
from __future__ import annotations

import os
import sys

from torch.utils.data import DataLoader, Dataset

from ..host import usable_cores
from ..paths import on_colab

__all__ = ["default_num_workers", "collate_pairs", "make_loader"]


def default_num_workers() -> int:
    """0 inside notebooks on Colab/Binder (worker start-up costs more than it saves there), else min(4, cores - 1)."""
    if os.environ.get("COURSE_NUM_WORKERS"):
        return int(os.environ["COURSE_NUM_WORKERS"])
    hosted = on_colab() or "BINDER_SERVICE_HOST" in os.environ
    if hosted and "ipykernel" in sys.modules:
        return 0
    return max(0, min(4, usable_cores() - 1))


def collate_pairs(batch: list) -> tuple[list, list]:
    """Keep images and targets as lists (detection: each image has its own number of boxes)."""
    images, targets = zip(*batch)
    return list(images), list(targets)


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool = False, num_workers: int | None = None,
                lists: bool = False, seed: int = 0) -> DataLoader:
    """A DataLoader with portable settings; ``lists=True`` for detection/captions (see :func:`collate_pairs`)."""
    import torch

    workers = default_num_workers() if num_workers is None else num_workers
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers,
                      collate_fn=collate_pairs if lists else None, persistent_workers=workers > 0,
                      pin_memory=torch.cuda.is_available(), generator=torch.Generator().manual_seed(seed))
