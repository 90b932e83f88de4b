"""torchvision.transforms.v2 pipelines per dataset; boxes and masks move with their image (tv_tensors).

    tf = train_transforms("voc_seg", cfg)      # pass as get_dataset(..., transforms=tf)
    mean, std = norm_stats("cifar10", cfg)
    mean, std = channel_stats(images)          # uint8 N×C×H×W -> per-channel mean and std in [0, 1]

Normalisation statistics (all computed by :func:`channel_stats`): for the shapes world they are computed
from its training images when it is generated (stored in the manifest); for real CIFAR they are computed
from the training split once and cached in ``data_dir()/stats.json``; datasets meant for pretrained
backbones (VOC, COCO, Pets, Flowers) use the ImageNet statistics those backbones were trained with.
Detection pipelines stop at float images in [0, 1]: torchvision's detection models normalise inside the
model.
"""
from __future__ import annotations

import json

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from ..paths import data_dir
from .cache import read_manifest
from .cifar import shapes_cifar
from .datasets import _KIND, load_tensors, shapes_set
from .registry import ensure
from .source import source_of
from .stats import channel_stats

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "norm_stats", "train_transforms", "eval_transforms",
           "TASK"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TASK = {"cifar10": "classify", "cifar100": "classify", "pets": "classify", "flowers102": "classify",
        "voc_det": "detect", "coco_det": "detect", "pets_box": "detect", "voc_seg": "segment", "pets_seg": "segment",
        "captions": "caption"}
_SIZE = {"cifar10": 32, "cifar100": 32, "pets": 224, "flowers102": 224, "voc_seg": 320, "pets_seg": 224,
         "captions": 224}  # real-data crop sizes; the shapes world keeps its own image size


def norm_stats(name: str, cfg) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) in [0, 1] for normalising ``name`` in the active profile."""
    if name not in TASK:
        raise ValueError(f"no transforms for dataset {name!r}: use one of {', '.join(TASK)}")
    if cfg.profile == "smoke":
        if name in ("cifar10", "cifar100"):
            m = read_manifest(shapes_cifar(name))
        else:
            m = read_manifest(shapes_set(_KIND[name]))
        return tuple(m["mean"]), tuple(m["std"])
    if name in ("cifar10", "cifar100"):
        if source_of(cfg) == "shapes":  # a rehearsal: the stats of the shapes world at CIFAR's size
            m = read_manifest(ensure(name, source="shapes"))
            return tuple(m["mean"]), tuple(m["std"])
        path = data_dir() / "stats.json"
        cache = json.loads(path.read_text()) if path.is_file() else {}
        if name not in cache:
            s = load_tensors(name, "train", cfg)
            cache[name] = {"mean": s.mean, "std": s.std}
            path.write_text(json.dumps(cache, indent=1))
        return tuple(cache[name]["mean"]), tuple(cache[name]["std"])
    return IMAGENET_MEAN, IMAGENET_STD


def _size(name: str, cfg) -> int | None:
    return None if cfg.profile == "smoke" and name not in ("cifar10", "cifar100") else _SIZE.get(name)


def train_transforms(name: str, cfg) -> v2.Compose:
    """Augmenting pipeline for ``name``: random crop/flip (+ colour jitter for photos), then float + normalise."""
    mean, std = norm_stats(name, cfg)
    task, size = TASK[name], _size(name, cfg)
    steps: list = [v2.ToImage()]
    if task == "classify" and name.startswith("cifar"):
        steps += [v2.RandomCrop(32, padding=4, padding_mode="reflect"), v2.RandomHorizontalFlip()]
    elif task in ("classify", "caption"):
        steps += [v2.RandomResizedCrop(size, scale=(0.5, 1.0), antialias=True)] if size else []
        steps += [v2.RandomHorizontalFlip()] if task == "classify" else []  # flips swap 'left of' in captions
    elif task == "segment":
        steps += [v2.RandomResizedCrop(size, scale=(0.5, 1.0), antialias=True)] if size else []
        steps += [v2.RandomHorizontalFlip()]
    else:  # detect
        steps += [v2.RandomPhotometricDistort(p=0.5), v2.RandomHorizontalFlip(), v2.SanitizeBoundingBoxes()]
    return v2.Compose(steps + _finish(task, mean, std))


def eval_transforms(name: str, cfg) -> v2.Compose:
    """Deterministic pipeline for ``name``: resize/centre-crop real photos, then float + normalise."""
    mean, std = norm_stats(name, cfg)
    task, size = TASK[name], _size(name, cfg)
    steps: list = [v2.ToImage()]
    if size and not name.startswith("cifar") and task != "detect":
        steps += [v2.Resize(size, antialias=True), v2.CenterCrop(size)]
    return v2.Compose(steps + _finish(task, mean, std))


def _finish(task: str, mean, std) -> list:
    # images -> float32 in [0, 1]; masks stay integer class indices (ToDtype leaves them alone)
    steps = [v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True)]
    if task != "detect":
        steps.append(v2.Normalize(list(mean), list(std)))
    return steps
