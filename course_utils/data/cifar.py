"""CIFAR-10/100: real files or shapes-world files in the same python-pickle format, read by one code path.

Both go through torchvision's ``CIFAR10``/``CIFAR100`` readers. Real files are checked against
torchvision's md5 table; generated files against the md5s in their own ``manifest.json`` (the
subclasses below swap the table, never the check). :func:`load_tensors` returns a whole split as one
uint8 NCHW tensor - what ``course_utils.train.loader.TensorLoader`` consumes.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import CIFAR10, CIFAR100

from . import shapes
from .cache import DataError, build_once, read_manifest, shapes_dir, verify_file
from .stats import channel_stats

__all__ = ["ImageSet", "write_cifar", "open_cifar", "shapes_cifar", "balanced_subset",
           "ShapesCIFAR10", "ShapesCIFAR100", "SMOKE_SIZES", "DATA_SEED"]

DATA_SEED = 0  # the shapes world is the same for every training seed
SMOKE_SIZES = {"cifar10": (5000, 1000), "cifar100": (10000, 2000)}  # (train, test) images
SPLITS = ("train", "test")
_TV = {"cifar10": CIFAR10, "cifar100": CIFAR100}


@dataclass(repr=False)
class ImageSet:
    """A whole split in memory: images uint8 (N, 3, H, W), labels int64 (N,), per-channel mean/std in [0, 1]."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    source: str
    coarse_labels: torch.Tensor | None = None  # CIFAR-100 superclasses, else None
    coarse_classes: list[str] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        mean = ", ".join(f"{m:.3f}" for m in self.mean)
        return f"ImageSet({self.source}: {n} images {c}x{h}x{w}, {len(self.classes)} classes, mean ({mean}))"


def write_cifar(folder: Path, name: str, train: tuple, test: tuple, classes, coarse_classes=None) -> None:
    """Write (images uint8 NHWC, fine, coarse) splits as CIFAR python-pickle batches under ``folder``."""
    base = Path(folder) / _TV[name].base_folder
    base.mkdir(parents=True, exist_ok=True)

    def entry(images, fine, coarse, label: str) -> dict:
        d = {"batch_label": label, "filenames": [f"{classes[y]}_s_{i:06d}.png" for i, y in enumerate(fine)],
             "data": np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), -1)}  # RRR..GGG..BBB
        if name == "cifar10":
            d["labels"] = [int(y) for y in fine]
        else:
            d["fine_labels"], d["coarse_labels"] = [int(y) for y in fine], [int(y) for y in coarse]
        return d

    def dump(obj, fname: str) -> None:
        (base / fname).write_bytes(pickle.dumps(obj, protocol=2))

    if name == "cifar10":
        parts = np.array_split(np.arange(len(train[0])), 5)
        for b, idx in enumerate(parts, 1):
            dump(entry(*(a[idx] for a in train), f"training batch {b} of 5"), f"data_batch_{b}")
        dump(entry(*test, "testing batch 1 of 1"), "test_batch")
        dump({"label_names": list(classes), "num_cases_per_batch": len(parts[0]), "num_vis": 3072}, "batches.meta")
    else:
        dump(entry(*train, "training batch 1 of 1"), "train")
        dump(entry(*test, "testing batch 1 of 1"), "test")
        dump({"fine_label_names": list(classes), "coarse_label_names": list(coarse_classes)}, "meta")


def _tables(folder: Path, name: str) -> dict:
    """torchvision-style checksum table built from a generated folder's manifest."""
    files = read_manifest(folder)["files"]
    base = _TV[name].base_folder
    md5 = {k.split("/", 1)[1]: v for k, v in files.items() if k.startswith(base + "/")}
    meta = dict(_TV[name].meta)
    if name == "cifar10":
        train = [[f"data_batch_{b}", md5.get(f"data_batch_{b}", "")] for b in range(1, 6)]
        test = [["test_batch", md5.get("test_batch", "")]]
    else:
        train, test = [["train", md5.get("train", "")]], [["test", md5.get("test", "")]]
    meta["md5"] = md5.get(meta["filename"], "")
    return {"train_list": train, "test_list": test, "meta": meta}


class ShapesCIFAR10(CIFAR10):
    """torchvision's CIFAR10 reader with the checksum table of a generated folder (from its manifest)."""

    def __init__(self, root, train: bool = True, transform=None, target_transform=None):
        for key, value in _tables(Path(root), "cifar10").items():
            setattr(self, key, value)  # instance attributes shadow torchvision's class-level table
        super().__init__(root, train=train, transform=transform, target_transform=target_transform)


class ShapesCIFAR100(CIFAR100):
    """torchvision's CIFAR100 reader with the checksum table of a generated folder (from its manifest)."""

    def __init__(self, root, train: bool = True, transform=None, target_transform=None):
        for key, value in _tables(Path(root), "cifar100").items():
            setattr(self, key, value)
        super().__init__(root, train=train, transform=transform, target_transform=target_transform)


def _check(name: str, split: str) -> None:
    if name not in _TV:
        raise DataError(f"unknown CIFAR variant {name!r}: use 'cifar10' or 'cifar100'")
    if split not in SPLITS:
        raise DataError(f"CIFAR has no split {split!r}: use one of {', '.join(SPLITS)}")


def open_cifar(root: str | Path, name: str, split: str, synthetic: bool = False, transform=None):
    """The torchvision dataset for ``root/<base_folder>``; clear :class:`DataError` if files are bad."""
    _check(name, split)
    root = Path(root)
    cls = {"cifar10": ShapesCIFAR10, "cifar100": ShapesCIFAR100}[name] if synthetic else _TV[name]
    if not (root / _TV[name].base_folder).is_dir():
        raise DataError(f"{root} has no {_TV[name].base_folder}/ folder: wrong root? Pass the folder that "
                        f"contains it (for real data that is course_utils.paths.data_dir()).")
    try:
        return cls(str(root), train=split == "train", transform=transform)
    except RuntimeError:
        # torchvision only says "not found or corrupted": find which file, and say so.
        probe = cls.__new__(cls)
        if synthetic:
            for key, value in _tables(root, name).items():
                setattr(probe, key, value)
        for fname, md5 in [*probe.train_list, *probe.test_list, [probe.meta["filename"], probe.meta["md5"]]]:
            verify_file(root / _TV[name].base_folder / fname, md5, "md5", None if synthetic else _TV[name].url)
        raise


def _coarse(root: Path, name: str, split: str) -> torch.Tensor | None:
    if name != "cifar100":
        return None
    with open(root / CIFAR100.base_folder / split, "rb") as f:
        return torch.tensor(pickle.load(f, encoding="latin1")["coarse_labels"], dtype=torch.int64)


def shapes_cifar(name: str, seed: int = DATA_SEED, sizes: tuple[int, int] | None = None,
                 rebuild: bool = False, upright: bool = False) -> Path:
    """Generate (once, cached by seed and sizes) the shapes world as CIFAR files; return its root.

    ``upright``: objects in their canonical pose (``shapes.make_classification``).
    """
    _check(name, "train")
    n_train, n_test = sizes or SMOKE_SIZES[name]
    classes = 10 if name == "cifar10" else 100

    def build(tmp: Path) -> dict:
        imgs, fine, coarse = shapes.make_classification(n_train + n_test, 32, seed, classes, upright)
        tr, te = slice(0, n_train), slice(n_train, None)
        names = shapes.SHAPES if classes == 10 else shapes.CIFAR100_FINE
        write_cifar(tmp, name, (imgs[tr], fine[tr], coarse[tr]), (imgs[te], fine[te], coarse[te]),
                    names, shapes.CIFAR100_COARSE)
        mean, std = channel_stats(imgs[tr], "NHWC")  # normalisation stats of the train split
        return {"generator": "shapes", "format": f"CIFAR-{classes} python pickle", "seed": seed,
                "sizes": [n_train, n_test], "mean": list(mean), "std": list(std),
                **({"upright": True} if upright else {})}

    folder = shapes_dir(name + ("-upright" if upright else ""), seed, (n_train, n_test))
    build_once(folder, build, rebuild=rebuild)
    return folder


def balanced_subset(labels: torch.Tensor, limit: int) -> torch.Tensor:
    """Indices (ascending) of the first ``limit`` items taking classes in turn: deterministic, balanced to 1."""
    labels = labels.cpu()
    order = torch.argsort(labels, stable=True)
    rank = torch.empty_like(labels)
    sorted_labels = labels[order]
    starts = torch.searchsorted(sorted_labels, sorted_labels, right=False)
    rank[order] = torch.arange(len(labels)) - starts  # position of each item within its class
    key = rank * len(labels) + torch.arange(len(labels))
    return torch.sort(torch.argsort(key)[:limit]).values


def _real_coarse_names(root: Path) -> list[str]:
    with open(root / CIFAR100.base_folder / "meta", "rb") as f:
        return list(pickle.load(f, encoding="latin1")["coarse_label_names"])
