"""``get_dataset(name, split, cfg)``: one call for every dataset of the course, real or shapes world.

=========== ============================== =============================================================
name        light / full (real)            smoke (shapes world, same on-disk format, same reader)
=========== ============================== =============================================================
cifar10     CIFAR-10                       10 shapes, 32x32, CIFAR-10 pickle batches
cifar100    CIFAR-100                      100 colour x shape classes, 20 superclasses, CIFAR-100 pickle
voc_det     VOC2012 detection (Main)       1-4 shapes per 128x128 image, VOC XML boxes
voc_seg     VOC2012 segmentation           the same scenes, palette PNG class masks with void borders
coco_det    COCO val2017 (80/20 cut)       1-4 shapes per 128x128 image, COCO JSON, RLE masks
captions    COCO val2017 captions          1-2 shapes per 64x64 image, "a small red star left of ..."
pets        Oxford-IIIT Pet (37 breeds)    one large shape per 64x64 image, Pet layout (class in name)
pets_seg    Oxford-IIIT Pet trimaps        the same images, trimaps (object/background/border)
pets_box    Oxford-IIIT Pet, animal boxes  the same images, the box around each trimap's object (localization)
flowers102  Oxford Flowers-102             one large shape per 64x64 image, Flowers-102 .mat layout
=========== ============================== =============================================================

Why these: VOC is the reference box+mask format and small enough for light runs; COCO val2017 is
the smallest official set with boxes, masks and 5 captions per image (we cut it 80/20 by image id,
since train2017 is 18 GB); Pets and Flowers are the classic small transfer-learning sets.
"""
from __future__ import annotations

from pathlib import Path

import torch

from . import shapes
from .cache import DataError, build_once, shapes_dir
from .cifar import ImageSet, _check, _coarse, _real_coarse_names, balanced_subset, open_cifar, shapes_cifar
from .registry import ensure
from .source import source_of
from .stats import channel_stats

__all__ = ["get_dataset", "load_tensors", "shapes_set", "SMOKE_SIZES", "NAMES", "splits_of"]

SMOKE_SIZES = {  # (image side, train/trainval images, val/test images)
    "voc": (128, 160, 40), "coco": (128, 160, 40), "captions": (64, 800, 200), "pets": (64, 400, 100),
    "flowers102": (64, 300, 100),
}
_KIND = {"voc_det": "voc", "voc_seg": "voc", "coco_det": "coco", "captions": "captions", "pets": "pets",
         "pets_seg": "pets", "pets_box": "pets", "flowers102": "flowers102"}
NAMES = ("cifar10", "cifar100", *_KIND)
_SPLITS = {"voc": ("train", "val", "trainval"), "coco": ("train", "val"), "captions": ("train", "val"),
           "pets": ("trainval", "test"), "flowers102": ("train", "val", "test")}
_CLASSES = ("__background__", *shapes.SHAPES)


def splits_of(name: str) -> tuple[str, ...]:
    """The split names a dataset accepts."""
    return ("train", "test") if name in ("cifar10", "cifar100") else _SPLITS[_KIND[name]]


def shapes_set(kind: str, seed: int = 0, sizes: tuple[int, int, int] | None = None, rebuild: bool = False) -> Path:
    """Generate (once, cached by seed and sizes) the shapes world for 'voc', 'coco', 'captions', 'pets'."""
    from .captions import scene_captions

    side, n_a, n_b = sizes or SMOKE_SIZES[kind]

    def build(tmp: Path) -> dict:
        if kind in ("voc", "coco"):
            images, scenes = shapes.make_scenes(n_a + n_b, side, seed)
        elif kind == "captions":
            images, scenes = shapes.make_scenes(n_a + n_b, side, seed, max_objects=2, min_pixels=20)
        else:
            images, scenes = shapes.make_scenes(n_a + n_b, side, seed, max_objects=1, radius=(0.22, 0.42))
        first, second = _SPLITS[kind][:2]
        parts = {first: (images[:n_a], scenes[:n_a]), second: (images[n_a:], scenes[n_a:])}
        if kind == "voc":
            from .voc import write_voc
            write_voc(tmp, parts, _CLASSES)
        elif kind == "coco":
            from .coco import write_coco
            write_coco(tmp, parts, shapes.SHAPES)
        elif kind == "captions":
            from .coco import write_coco
            caps = {s: [scene_captions(sc, side) for sc in p[1]] for s, p in parts.items()}
            write_coco(tmp, parts, shapes.SHAPES, captions=caps)
        elif kind == "pets":
            from .pets import write_pets
            write_pets(tmp, parts, shapes.SHAPES)
        elif kind == "flowers102":
            from .flowers import write_flowers
            write_flowers(tmp, images, scenes, n_a, shapes.SHAPES)
        else:
            raise DataError(f"no shapes generator for {kind!r}")
        mean, std = channel_stats(images[:n_a], "NHWC")  # normalisation stats of the first (training) split
        return {"generator": "shapes", "format": kind, "seed": seed, "sizes": [side, n_a, n_b], "mean": list(mean),
                "std": list(std)}

    folder = shapes_dir(kind, seed, (side, n_a, n_b))
    build_once(folder, build, rebuild=rebuild)
    return folder


def _real(name: str, split: str, transforms, source: str = "real"):
    """The real set's reader on ``ensure``'s root: the real files, or in a rehearsal (``source="shapes"``) the
    shapes world at the real size in the same layout (only the class list and checksum table differ)."""

    kind, shapes_world = _KIND[name], source == "shapes"
    if kind == "voc":
        from .voc import VOC_CLASSES, VOCDetectionSet, VOCSegmentationSet
        cls = VOCDetectionSet if name == "voc_det" else VOCSegmentationSet
        return cls(ensure("voc", source=source), split, classes=_CLASSES if shapes_world else VOC_CLASSES,
                   transforms=transforms)
    if kind in ("coco", "captions"):
        from .coco import CocoCaptionSet, CocoDetectionSet
        root = ensure("coco", source=source)
        ids = _coco_cut(root, split)
        cls = CocoDetectionSet if kind == "coco" else CocoCaptionSet
        return cls(root, split, transforms, image_dir="val2017", ann_split="val2017", image_ids=ids)
    if kind == "pets":
        from .pets import PetsSet
        return PetsSet(ensure("pets", source=source).parent, split, segmentation=name == "pets_seg",
                       transforms=transforms, boxes=name == "pets_box")
    from .flowers import FlowersSet
    return FlowersSet(ensure("flowers102", source=source).parent, split, transforms=transforms,
                      synthetic=shapes_world)


def _coco_cut(root: Path, split: str) -> list[int]:
    """COCO val2017 image ids cut 80/20 (sorted by id) into our train/val."""
    if split not in ("train", "val"):
        raise DataError(f"COCO has no split {split!r} here: use 'train' or 'val' (an 80/20 cut of val2017)")
    import json
    ids = sorted(im["id"] for im in json.loads((root / "annotations" / "instances_val2017.json").read_text())["images"])
    cut = int(0.8 * len(ids))
    return ids[:cut] if split == "train" else ids[cut:]


def get_dataset(name: str, split: str, cfg, transforms=None):
    """A torch Dataset for ``name`` (see the table above): real data in light/full, the shapes world in smoke,
    and in a rehearsal (light/full on the shapes world) the shapes world at the real size, read by the real path.

    Samples are tv_tensors (Image uint8 (3, H, W); BoundingBoxes xyxy; Mask), except CIFAR (PIL + int,
    torchvision's own class). ``transforms`` is a v2 transform applied to (image, target) jointly;
    see :mod:`course_utils.data.transforms` for the per-dataset pipelines.
    """
    if name not in NAMES:
        raise DataError(f"unknown dataset {name!r}: use one of {', '.join(NAMES)}")
    if split not in splits_of(name):
        raise DataError(f"{name} has no split {split!r}: use one of {', '.join(splits_of(name))}")
    source = source_of(cfg)
    if name in ("cifar10", "cifar100"):
        if cfg.profile == "smoke":
            return open_cifar(shapes_cifar(name), name, split, synthetic=True, transform=transforms)
        return open_cifar(ensure(name, source=source), name, split, synthetic=source == "shapes",
                          transform=transforms)
    if cfg.profile != "smoke":
        return _real(name, split, transforms, source)
    kind = _KIND[name]
    root = shapes_set(kind)
    if kind == "voc":
        from .voc import VOCDetectionSet, VOCSegmentationSet
        cls = VOCDetectionSet if name == "voc_det" else VOCSegmentationSet
        return cls(root, split, classes=_CLASSES, transforms=transforms)
    if kind == "coco":
        from .coco import CocoDetectionSet
        return CocoDetectionSet(root, split, transforms)
    if kind == "captions":
        from .coco import CocoCaptionSet
        return CocoCaptionSet(root, split, transforms)
    if kind == "pets":
        from .pets import PetsSet
        return PetsSet(root, split, segmentation=name == "pets_seg", transforms=transforms, boxes=name == "pets_box")
    from .flowers import FlowersSet
    return FlowersSet(root, split, transforms=transforms, synthetic=True)


def load_tensors(name: str, split: str, cfg, limit: int | None = None, upright: bool = False) -> ImageSet:
    """A whole CIFAR split as uint8 NCHW tensors: shapes world in smoke, real CIFAR in light/full (or, in a
    rehearsal, the shapes world at CIFAR's real size: 50,000 + 10,000 images).

    ``upright`` (smoke only): the shapes world with objects upright, for tasks that
    need a "which way is up" (real photos already have one); light/full ignore it.
    """
    _check(name, split)
    if cfg.profile != "smoke" and source_of(cfg) == "shapes":
        root, synthetic = ensure(name, source="shapes"), True
        source = f"shapes-{10 if name == 'cifar10' else 100} at CIFAR-{name[5:]}'s real size (rehearsal)"
        ds = open_cifar(root, name, split, synthetic=True)
    elif cfg.profile == "smoke":
        root, synthetic = shapes_cifar(name, upright=upright), True
        source = f"shapes-{10 if name == 'cifar10' else 100}{' (upright)' if upright else ''} in CIFAR-{name[5:]} pickle format"
        try:
            ds = open_cifar(root, name, split, synthetic=True)
        except DataError as exc:  # a damaged cache: it is ours, so rebuild it once
            print(f"{exc}\nrebuilding {root}")
            root = shapes_cifar(name, rebuild=True, upright=upright)
            ds = open_cifar(root, name, split, synthetic=True)
    else:
        root, synthetic = ensure(name), False
        source = f"CIFAR-{name[5:]}"
        ds = open_cifar(root, name, split)
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # (N, 3, 32, 32) uint8
    labels = torch.tensor(ds.targets, dtype=torch.int64)
    coarse = _coarse(Path(root), name, split)
    if limit is not None and limit < len(labels):
        idx = balanced_subset(labels, limit)
        images, labels = images[idx], labels[idx]
        coarse = coarse[idx] if coarse is not None else None
        source += f" (balanced subset of {limit})"
    mean, std = channel_stats(images)
    coarse_classes = None
    if name == "cifar100":
        coarse_classes = list(shapes.CIFAR100_COARSE) if synthetic else _real_coarse_names(Path(root))
    return ImageSet(images, labels, list(ds.classes), mean, std, source, coarse, coarse_classes)
