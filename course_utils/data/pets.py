"""Oxford-IIIT Pet layout: write shapes scenes as pets (class from the file name, trimaps), read via torchvision.

Layout (as ``images.tar.gz`` + ``annotations.tar.gz``)::

    oxford-iiit-pet/images/<Class>_<n>.jpg
    oxford-iiit-pet/annotations/{trainval,test}.txt     "<id> <class 1..C> <species 1..2> <breed>"
    oxford-iiit-pet/annotations/trimaps/<id>.png        L-mode PNG: 1 object, 2 background, 3 border

Samples: (Image uint8 (3, H, W), label int) or (Image, Mask int64 (H, W) with 0 object, 1 background,
2 border - torchvision's trimap values minus one) or, with ``boxes=True``, (Image, {"boxes": BoundingBoxes
(1, 4) xyxy, "labels": int64 (1,)}): the whole animal's box, around the trimap's object and border pixels.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.datasets import OxfordIIITPet
from torchvision.transforms.v2 import functional as F

from .cache import JPEG, DataError, split_items
from .voc import _void_border

__all__ = ["write_pets", "PetsSet", "SPLITS"]

SPLITS = ("trainval", "test")


def write_pets(folder: Path, splits: dict, classes, n_classes: int | None = None) -> None:
    """Write {split: (images uint8 NHWC, one-object scenes)} in the Oxford-IIIT Pet layout under ``folder``.

    The label is the object's shape (``classes`` names the shapes), or with ``n_classes`` its colour x shape
    pair (shape * 10 + colour) modulo ``n_classes`` (``classes`` then has ``n_classes`` names): 37 classes
    like the real set, each a fixed set of 2-3 pairs. A split may also be a sized iterable of (image, scene)
    pairs (``cache.split_items``).
    """
    from .shapes import COLOURS

    base = Path(folder) / "oxford-iiit-pet"
    for sub in ("images", "annotations/trimaps"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    n = 0
    for split, part in splits.items():
        lines = []
        for img, sc in split_items(part)[1]:
            if len(sc["shape"]) == 0:
                continue
            label = int(sc["shape"][0])
            if n_classes:
                label = (label * len(COLOURS) + int(sc["colour"][0])) % n_classes
            image_id = f"{classes[label].capitalize()}_{n}"
            n += 1
            Image.fromarray(img).save(base / "images" / f"{image_id}.jpg", **JPEG)
            fg = sc["masks"][0]
            border = _void_border(fg.astype(np.int64)) == 255
            trimap = np.where(border, 3, np.where(fg, 1, 2)).astype(np.uint8)
            Image.fromarray(trimap).save(base / "annotations" / "trimaps" / f"{image_id}.png")
            lines.append(f"{image_id} {label + 1} {1 + label % 2} {label + 1}\n")
        (base / "annotations" / f"{split}.txt").write_text("".join(lines))


def _class_names(root: Path) -> list[str]:
    """Names for every label in either split (torchvision lists only the classes present in one split)."""
    names = {}
    for split in SPLITS:
        path = root / "oxford-iiit-pet" / "annotations" / f"{split}.txt"
        for line in path.read_text().splitlines() if path.is_file() else []:
            image_id, label, *_ = line.split()
            names[int(label) - 1] = " ".join(p.title() for p in image_id.rsplit("_", 1)[0].split("_"))
    return [names.get(i, str(i)) for i in range(max(names, default=-1) + 1)]


class PetsSet(Dataset):
    """torchvision's OxfordIIITPet -> (Image, class index); segmentation=True: (Image, Mask trimap-1);
    boxes=True: (Image, {"boxes", "labels"}) with the box of the animal (localization)."""

    def __init__(self, root: str | Path, split: str = "trainval", segmentation: bool = False, transforms=None,
                 boxes: bool = False):
        if split not in SPLITS:
            raise DataError(f"Oxford-IIIT Pet has no split {split!r}: use one of {', '.join(SPLITS)}")
        if not (Path(root) / "oxford-iiit-pet" / "images").is_dir():
            raise DataError(f"{root} has no oxford-iiit-pet/images/ folder: wrong root? Pass the folder that "
                            "contains oxford-iiit-pet.")
        if segmentation and boxes:
            raise DataError("PetsSet gives masks (segmentation=True) or boxes (boxes=True), not both")
        kind = ["category", "segmentation"] if boxes else "segmentation" if segmentation else "category"
        self.ds = OxfordIIITPet(str(root), split=split, target_types=kind, download=False)
        self.classes, self.segmentation, self.transforms = _class_names(Path(root)), segmentation, transforms
        self.boxes = boxes

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        pil, target = self.ds[i]
        image = tv_tensors.Image(F.pil_to_tensor(pil.convert("RGB")))
        if self.boxes:
            target = self._box_target(i, *target, pil.size)
        elif self.segmentation:
            if target.size != pil.size:
                raise DataError(f"trimap {self.ds._segs[i]} is {target.size} but its image is {pil.size}: "
                                "masks must match their image pixel for pixel.")
            target = tv_tensors.Mask(torch.from_numpy(np.array(target)).long() - 1)
        return self.transforms(image, target) if self.transforms else (image, target)

    def _box_target(self, i: int, label: int, trimap, size: tuple[int, int]) -> dict:
        """{"boxes": the xyxy box around the trimap's object (1) and border (3) pixels, "labels": [label]}."""
        t = np.array(trimap)
        ys, xs = np.nonzero(t != 2)  # 2 = background
        if trimap.size != size or len(xs) == 0:
            raise DataError(f"trimap {self.ds._segs[i]} is empty or not the size of its image: cannot box the animal.")
        box = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float32)
        return {"boxes": tv_tensors.BoundingBoxes(box, format="XYXY", canvas_size=(size[1], size[0])),
                "labels": torch.tensor([int(label)], dtype=torch.int64)}
