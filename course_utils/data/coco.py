"""COCO JSON: write shapes scenes as instances (boxes + RLE masks) and captions, read through torchvision.

Layout (as COCO 2017)::

    images/<split>/<id>.jpg
    annotations/instances_<split>.json   boxes [x, y, w, h] in pixels, masks as compressed RLE
    annotations/captions_<split>.json    one or more captions per image

Reading uses ``torchvision.datasets.CocoDetection`` wrapped by ``wrap_dataset_for_transforms_v2``
(pycocotools decodes the masks) and ``CocoCaptions``. Samples are tv_tensors: Image uint8 (3, H, W),
boxes xyxy, masks uint8 0/1 (K, H, W), labels = COCO category ids (1-based).
"""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.datasets import CocoCaptions, CocoDetection, wrap_dataset_for_transforms_v2
from torchvision.transforms.v2 import functional as F

from .cache import JPEG, DataError, split_items

__all__ = ["write_coco", "CocoDetectionSet", "CocoCaptionSet"]


def _rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def write_coco(folder: Path, splits: dict, classes, captions: dict | None = None) -> None:
    """Write {split: (images uint8 NHWC, scenes)} (+ {split: [[caption, ...] per image]}) in COCO layout.

    ``classes`` are the object names without background; category ids are 1..len(classes). A split may also
    be a sized iterable of (image, scene) pairs (``cache.split_items``), and ``captions`` a function
    scene -> [caption, ...].
    """
    folder = Path(folder)
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    categories = [{"id": i + 1, "name": c, "supercategory": "shape"} for i, c in enumerate(classes)]
    for split, part in splits.items():
        (folder / "images" / split).mkdir(parents=True, exist_ok=True)
        entries, anns, caps = [], [], []
        n, items = split_items(part)
        for i, (img, sc) in enumerate(items):
            image_id = i + 1
            name = f"{image_id:012d}.jpg"
            Image.fromarray(img).save(folder / "images" / split / name, **JPEG)
            entries.append({"id": image_id, "file_name": name, "height": img.shape[0], "width": img.shape[1]})
            for shape, box, mask in zip(sc["shape"], sc["boxes"], sc["masks"]):
                x0, y0, x1, y1 = (float(v) for v in box)
                anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": int(shape) + 1,
                             "bbox": [x0, y0, x1 - x0, y1 - y0], "area": int(mask.sum()), "iscrowd": 0,
                             "segmentation": _rle(mask)})
            texts = captions(sc) if callable(captions) else (captions or {}).get(split, [[]] * n)[i]
            for text in texts:
                caps.append({"id": len(caps) + 1, "image_id": image_id, "caption": text})
        info = {"description": "shapes world in COCO format (course_utils)", "version": "1.0"}
        doc = {"info": info, "images": entries, "annotations": anns, "categories": categories}
        (folder / "annotations" / f"instances_{split}.json").write_text(json.dumps(doc), encoding="utf-8")
        if captions:
            doc = {"info": info, "images": entries, "annotations": caps}
            (folder / "annotations" / f"captions_{split}.json").write_text(json.dumps(doc), encoding="utf-8")


def _paths(root: Path, split: str, kind: str, image_dir: str | None, splits) -> tuple[Path, Path]:
    if split not in splits:
        raise DataError(f"this COCO set has no split {split!r}: use one of {', '.join(splits)}")
    ann = Path(root) / "annotations" / f"{kind}_{split}.json"
    images = Path(root) / (image_dir or f"images/{split}")
    if not ann.is_file() or not images.is_dir():
        raise DataError(f"{root} has no {ann.relative_to(root)} and {images.relative_to(root)}/: wrong root? "
                        "Pass the folder that holds annotations/ and the images.")
    return images, ann


def _only(ids: list[int], keep: list[int]) -> list[int]:
    """The ids that are in ``keep``, in their original order."""
    keep = set(keep)
    return [i for i in ids if i in keep]


class CocoDetectionSet(Dataset):
    """COCO instances -> (Image uint8 (3, H, W), {"boxes": xyxy, "labels": category ids, "masks": (K, H, W)})."""

    def __init__(self, root: str | Path, split: str = "train", transforms=None, image_dir: str | None = None,
                 ann_split: str | None = None, image_ids: list[int] | None = None, splits=("train", "val")):
        if split not in splits:
            raise DataError(f"this COCO set has no split {split!r}: use one of {', '.join(splits)}")
        images, ann = _paths(Path(root), ann_split or split, "instances", image_dir, (ann_split or split,))
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
            base = CocoDetection(str(images), str(ann))
        if image_ids is not None:  # e.g. real val2017 cut into our train/val
            base.ids = _only(base.ids, image_ids)
        self.coco = base.coco
        self.classes = ["__background__"] + [c["name"] for c in self.coco.loadCats(self.coco.getCatIds())]
        self.ds = wrap_dataset_for_transforms_v2(base, target_keys=("boxes", "labels", "masks", "image_id"))
        self.transforms = transforms

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        pil, target = self.ds[i]
        h, w = pil.height, pil.width
        info = self.coco.loadImgs(target["image_id"])[0]
        if (info["width"], info["height"]) != (w, h):
            raise DataError(f"{info['file_name']} is {w}x{h} but its annotation says "
                            f"{info['width']}x{info['height']}: fix the JSON or the image.")
        boxes = target.get("boxes", tv_tensors.BoundingBoxes(torch.zeros((0, 4)), format="XYXY", canvas_size=(h, w)))
        if len(boxes) and ((boxes[:, :2] < 0).any() or (boxes[:, 2] > w).any() or (boxes[:, 3] > h).any()):
            raise DataError(f"image {info['file_name']}: a box lies outside the {w}x{h} image "
                            f"({boxes.tolist()}); fix the annotations.")
        target = {"boxes": boxes, "labels": target.get("labels", torch.zeros(0, dtype=torch.int64)),
                  "masks": target.get("masks", tv_tensors.Mask(torch.zeros((0, h, w), dtype=torch.uint8)))}
        image = tv_tensors.Image(F.pil_to_tensor(pil))
        return self.transforms(image, target) if self.transforms else (image, target)


class CocoCaptionSet(Dataset):
    """COCO captions -> (Image uint8 (3, H, W), list of caption strings)."""

    def __init__(self, root: str | Path, split: str = "train", transform=None, image_dir: str | None = None,
                 ann_split: str | None = None, image_ids: list[int] | None = None, splits=("train", "val")):
        if split not in splits:
            raise DataError(f"this caption set has no split {split!r}: use one of {', '.join(splits)}")
        images, ann = _paths(Path(root), ann_split or split, "captions", image_dir, (ann_split or split,))
        with contextlib.redirect_stdout(io.StringIO()):
            self.ds = CocoCaptions(str(images), str(ann))
        if image_ids is not None:
            self.ds.ids = _only(self.ds.ids, image_ids)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        pil, captions = self.ds[i]
        image = tv_tensors.Image(F.pil_to_tensor(pil.convert("RGB")))
        return (self.transform(image) if self.transform else image), captions
