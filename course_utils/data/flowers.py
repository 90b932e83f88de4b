"""Oxford Flowers-102 layout: write shapes as ``jpg/`` + ``imagelabels.mat`` + ``setid.mat``, read via torchvision.

torchvision's ``Flowers102`` checks the md5s of the two .mat files against the official ones; for
generated files :class:`ShapesFlowers102` swaps in the md5s from our manifest (the check stays).
Samples: (Image uint8 (3, H, W), label int 0-based).
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.datasets import Flowers102
from torchvision.transforms.v2 import functional as F

from .cache import JPEG, DataError, read_manifest, split_items

__all__ = ["write_flowers", "ShapesFlowers102", "FlowersSet", "SPLITS"]

SPLITS = ("train", "val", "test")
_HEADER = 116  # bytes of free text at the start of a MAT v5 file


def _savemat(path: Path, data: dict) -> None:
    """scipy's savemat, with its 'Created on: <date>' header text made constant so files are byte-stable."""
    from scipy.io import savemat

    buf = io.BytesIO()
    savemat(buf, data)
    raw = bytearray(buf.getvalue())
    raw[:_HEADER] = b"MATLAB 5.0 MAT-file, written by course_utils (shapes world)".ljust(_HEADER)
    path.write_bytes(bytes(raw))


def write_flowers(folder: Path, images: np.ndarray, scenes: list, n_trainval: int, classes,
                  fine: bool = False) -> None:
    """Write images (uint8 NHWC) of one-object scenes: first half of n_trainval train, rest val, then test.

    The label is the object's shape, or with ``fine`` its colour x shape pair (shape * 10 + colour, 100
    classes, ``classes`` = ``shapes.CIFAR100_FINE``). With ``scenes=None``, ``images`` is a sized iterable of
    (image, scene) pairs (``cache.split_items``).
    """
    from .shapes import COLOURS

    base = Path(folder) / "flowers-102"
    (base / "jpg").mkdir(parents=True, exist_ok=True)
    label_of = (lambda sc: int(sc["shape"][0]) * len(COLOURS) + int(sc["colour"][0])) if fine else \
        (lambda sc: int(sc["shape"][0]))
    n, items = split_items((images, scenes) if scenes is not None else images)
    labels = np.ones(n, dtype=np.uint8)
    for i, (img, sc) in enumerate(items, 1):
        Image.fromarray(img).save(base / "jpg" / f"image_{i:05d}.jpg", **JPEG)
        labels[i - 1] = label_of(sc) + 1 if len(sc["shape"]) else 1
    ids = np.arange(1, n + 1, dtype=np.uint16)
    half = n_trainval // 2
    _savemat(base / "imagelabels.mat", {"labels": labels[None, :]})
    _savemat(base / "setid.mat", {"trnid": ids[None, :half], "valid": ids[None, half:n_trainval],
                                  "tstid": ids[None, n_trainval:]})
    (base / "classes.txt").write_text("".join(c + "\n" for c in classes))


class ShapesFlowers102(Flowers102):
    """torchvision's Flowers102 reader with the .mat checksums of a generated folder (from its manifest)."""

    def __init__(self, root, split: str = "train", transform=None):
        files = read_manifest(root)["files"]
        self._file_dict = {k: (v[0], files.get(f"flowers-102/{v[0]}", "")) for k, v in Flowers102._file_dict.items()}
        super().__init__(root, split=split, transform=transform, download=False)
        self.classes = (Path(root) / "flowers-102" / "classes.txt").read_text().split()


class FlowersSet(Dataset):
    """Flowers-102 (real, or shapes with ``synthetic=True``) -> (Image uint8 (3, H, W), label)."""

    def __init__(self, root: str | Path, split: str = "train", transforms=None, synthetic: bool = False):
        if split not in SPLITS:
            raise DataError(f"Flowers-102 has no split {split!r}: use one of {', '.join(SPLITS)}")
        if not (Path(root) / "flowers-102" / "jpg").is_dir():
            raise DataError(f"{root} has no flowers-102/jpg/ folder: wrong root? Pass the folder that contains "
                            "flowers-102.")
        try:
            self.ds = (ShapesFlowers102 if synthetic else Flowers102)(str(root), split=split)
        except RuntimeError as exc:
            raise DataError(f"Flowers-102 files in {root}/flowers-102 are missing or fail their md5 check ({exc}); "
                            "delete the folder and download (or, for the shapes world, regenerate) it.") from exc
        self.classes, self.transforms = list(self.ds.classes), transforms

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        pil, label = self.ds[i]
        image = tv_tensors.Image(F.pil_to_tensor(pil.convert("RGB")))
        return (self.transforms(image) if self.transforms else image), label
