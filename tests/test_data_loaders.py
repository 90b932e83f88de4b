"""Portable DataLoader settings: picklable detection batches, the worker count rules."""
from __future__ import annotations

import pickle

import torch

import course_utils
from course_utils.host import usable_cores
from course_utils.data import get_dataset, make_loader, train_transforms
from course_utils.data.loaders import collate_pairs, default_num_workers


def test_detection_batches_are_lists_and_picklable():
    cfg = course_utils.setup("smoke", 0, quiet=True)
    ds = get_dataset("voc_det", "val", cfg, transforms=train_transforms("voc_det", cfg))
    pickle.dumps((ds, collate_pairs))  # what spawn-based workers (macOS, Windows) need
    images, targets = next(iter(make_loader(ds, batch_size=4, lists=True, num_workers=0)))
    assert len(images) == len(targets) == 4 and images[0].dtype == torch.float32
    assert all(len(t["boxes"]) == len(t["labels"]) for t in targets)


def test_num_workers_rules(monkeypatch):
    monkeypatch.setenv("COURSE_NUM_WORKERS", "3")
    assert default_num_workers() == 3
    monkeypatch.delenv("COURSE_NUM_WORKERS")
    monkeypatch.setenv("COLAB_RELEASE_TAG", "x")
    monkeypatch.setitem(__import__("sys").modules, "ipykernel", object())
    assert default_num_workers() == 0
    monkeypatch.delenv("COLAB_RELEASE_TAG")
    assert default_num_workers() == max(0, min(4, usable_cores() - 1))
