"""Which data a run reads, and the shapes world at the real datasets' sizes for a rehearsal.

The profile says *how much work* (sizes, epochs, models); the data source says *which data*:

    real    the real datasets (light and full, the default)
    shapes  the shapes world: small in smoke (always), or - for light/full - generated at the real
            datasets' sizes and in their real on-disk layouts. That is a **rehearsal**: every lesson runs
            its real profile's sizes and code path, offline, on data of the real size and format.

``$COURSE_DATA_SOURCE`` (``course run --data shapes`` sets it, papermill kernels inherit it) or
``setup(..., data="shapes")`` asks for a rehearsal; ``auto`` never picks one. In a rehearsal,
:func:`course_utils.data.registry.ensure` returns :func:`real_root` (never the network) and the readers are
the real ones; pretrained weights are replaced by random ones (:func:`course_utils.transfer.pretrained`).

Real sizes (``REAL_SIZES``) and what the shapes version keeps of each real set:

=========== ================================== ====================================================
name        real set                           shapes world at real size
=========== ================================== ====================================================
cifar10     50,000 train + 10,000 test, 32x32  the same counts, 10 classes, CIFAR-10 pickle batches
cifar100    50,000 + 10,000, 100/20 classes    the same counts and classes, CIFAR-100 pickle files
voc         VOC2012: Main 5,717 train + 5,823  the same counts (masks only for the Segmentation
            val, Segmentation 1,464 + 1,449    subset), 448x448 JPEGs (~ 500x375), 10 classes
coco        val2017: 5,000 images ~ 640x480    5,000 544x544 JPEGs in ``val2017/`` with
            (our 80/20 cut), instances+captions instances_val2017.json and captions_val2017.json
pets        3,680 trainval + 3,669 test,       the same counts, 448x448, 37 classes (each a fixed
            37 breeds, trimaps                 set of 2-3 colour x shape pairs), trimaps
flowers102  1,020 train + 1,020 val + 6,149    the same counts, 544x544, 100 classes (colour x
            test, 102 classes                  shape; the real set has 102)
=========== ================================== ====================================================

Images are square at a side with about the real images' pixel count, so decoding and resizing cost
what they cost on the real files. Generating a large set takes minutes once (Pets: 7.5 CPU minutes; it is
rendered and written a chunk at a time, so memory stays under a gigabyte); it is cached like any shapes set
(``data_dir()/shapes/<name>-real-...``). ``course data shapes --real-sizes NAME`` makes it ahead of time.
"""
from __future__ import annotations

import itertools
import shutil
from pathlib import Path

from .cache import DataError, build_once, shapes_dir
from .catalog import REAL

__all__ = ["REAL_SIZES", "real_root", "PETS_CLASSES"]

PETS_CLASSES = 37
SEED = 0  # one world for every training seed, as in smoke

# name -> sizes: CIFAR (train, test); others (image side, first split, second split[, ...])
REAL_SIZES: dict[str, tuple[int, ...]] = {
    "cifar10": (50000, 10000),
    "cifar100": (50000, 10000),
    "voc": (448, 5717, 5823, 1464, 1449),  # side, Main train/val, Segmentation train/val
    "coco": (544, 5000),  # side, val2017 images (get_dataset cuts them 80/20 into train/val)
    "pets": (448, 3680, 3669),  # side, trainval, test
    "flowers102": (544, 2040, 6149),  # side, train+val (half each), test
}


def real_root(name: str, progress: bool = True) -> Path:
    """The shapes world of real dataset ``name`` (a key of registry.REAL) at its real size, laid out like the
    real one: the folder :func:`~course_utils.data.registry.ensure` would return for the real set."""
    if name in ("cifar10", "cifar100"):
        from .cifar import shapes_cifar
        return shapes_cifar(name, SEED, REAL_SIZES[name])
    if name not in REAL_SIZES:
        raise DataError(f"no shapes world at real size for {name!r}: use one of {', '.join(REAL_SIZES)}")
    sizes = REAL_SIZES[name]
    folder = shapes_dir(f"{name}-real", SEED, sizes)
    if progress and not (folder / "manifest.json").is_file():
        print(f"generating the shapes world as {REAL[name].title} at its real size {sizes} "
              "(once; minutes for the large sets) ...", flush=True)
    build_once(folder, lambda tmp: _BUILDERS[name](tmp, sizes))
    return (folder / REAL[name].folder).resolve()


class _Stream:
    """A sized iterable of (image, scene) pairs taken from a shared iterator: one split of a world that
    :func:`~course_utils.data.shapes.iter_scenes` renders chunk by chunk (memory stays at one chunk)."""

    def __init__(self, pairs, n: int):
        self.pairs, self.n = pairs, n

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return itertools.islice(self.pairs, self.n)


def _scenes(n_parts: tuple[int, ...], side: int, **kwargs) -> list[_Stream]:
    """Consecutive splits of ``sum(n_parts)`` scenes, rendered lazily in order (the writers take them in turn)."""
    from . import shapes

    pairs = (pair for images, scenes in shapes.iter_scenes(sum(n_parts), side, SEED, **kwargs)
             for pair in zip(images, scenes))
    return [_Stream(pairs, n) for n in n_parts]


# Builders write the real layout into ``tmp``. No normalisation statistics in their manifests: the real path
# normalises these sets with ImageNet's (data.transforms.norm_stats), and one pass over gigabytes costs minutes.
def _voc(tmp: Path, sizes) -> dict:
    from . import shapes
    from .voc import write_voc

    side, n_train, n_val, seg_train, seg_val = sizes
    train, val = _scenes((n_train, n_val), side)
    write_voc(tmp, {"train": train, "val": val}, ("__background__", *shapes.SHAPES),
              segmented={"train": seg_train, "val": seg_val})
    return {"generator": "shapes", "format": "voc", "real_size": True, "sizes": list(sizes)}


def _coco(tmp: Path, sizes) -> dict:
    from . import shapes
    from .captions import scene_captions
    from .coco import write_coco

    side, n = sizes
    root = tmp / "coco"  # registry.REAL["coco"].folder
    (everything,) = _scenes((n,), side)
    write_coco(root, {"val2017": everything}, shapes.SHAPES, captions=lambda sc: scene_captions(sc, side))
    shutil.move(str(root / "images" / "val2017"), str(root / "val2017"))  # the real layout: coco/val2017/
    (root / "images").rmdir()
    return {"generator": "shapes", "format": "coco val2017", "real_size": True, "sizes": list(sizes)}


def _pets(tmp: Path, sizes) -> dict:
    from .pets import write_pets

    side, n_a, n_b = sizes
    trainval, test = _scenes((n_a, n_b), side, max_objects=1, radius=(0.22, 0.42))
    names = [f"breed_{k:02d}" for k in range(PETS_CLASSES)]
    write_pets(tmp, {"trainval": trainval, "test": test}, names, n_classes=PETS_CLASSES)
    return {"generator": "shapes", "format": "pets", "real_size": True, "sizes": list(sizes)}


def _flowers(tmp: Path, sizes) -> dict:
    from . import shapes
    from .flowers import write_flowers

    side, n_trainval, n_test = sizes
    (everything,) = _scenes((n_trainval + n_test,), side, max_objects=1, radius=(0.22, 0.42))
    write_flowers(tmp, everything, None, n_trainval, shapes.CIFAR100_FINE, fine=True)
    return {"generator": "shapes", "format": "flowers102", "real_size": True, "sizes": list(sizes)}


_BUILDERS = {"voc": _voc, "coco": _coco, "pets": _pets, "flowers102": _flowers}
