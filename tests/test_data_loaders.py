"""Portable DataLoader settings and the weights cache location."""
from __future__ import annotations

import pickle

import torch

import course_utils
from course_utils.config import usable_cores
from course_utils.data import get_dataset, make_loader, train_transforms, use_weights_dir, weights_dir
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


def test_weights_cache_under_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.delenv("HF_HOME", raising=False)
    assert use_weights_dir() == tmp_path / "weights" / "torch" and weights_dir() == tmp_path / "weights"
    assert torch.hub.get_dir() == str(tmp_path / "weights" / "torch" / "hub")  # torchvision weights land here
    monkeypatch.setenv("TORCH_HOME", "/elsewhere")
    assert str(use_weights_dir()) == "/elsewhere"  # the user's choice wins
