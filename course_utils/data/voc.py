"""Pascal VOC: write shapes scenes in the VOC2012 layout, read any VOC folder through torchvision.

Layout (as in ``VOCtrainval_11-May-2012.tar``)::

    VOCdevkit/VOC2012/JPEGImages/<id>.jpg            images
    VOCdevkit/VOC2012/Annotations/<id>.xml           boxes: 1-based inclusive pixel corners
    VOCdevkit/VOC2012/SegmentationClass/<id>.png     palette PNG: 0 background, k class, 255 void border
    VOCdevkit/VOC2012/SegmentationObject/<id>.png    palette PNG: instance 1..K, 255 void border
    VOCdevkit/VOC2012/ImageSets/{Main,Segmentation}/<split>.txt

Reading returns ``tv_tensors``: ``Image`` uint8 (3, H, W); boxes as ``BoundingBoxes`` xyxy in pixel
edges (0-based, max exclusive: VOC's ``xmin - 1, ymin - 1, xmax, ymax``); labels int64 with 0 = background.
"""
from __future__ import annotations

import io
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.datasets import VOCDetection, VOCSegmentation
from torchvision.transforms.v2 import functional as F

from .cache import JPEG, DataError, split_items

__all__ = ["VOC_CLASSES", "voc_palette", "write_voc", "VOCDetectionSet", "VOCSegmentationSet", "SPLITS"]

VOC_CLASSES = ("__background__", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
               "train", "tvmonitor")
SPLITS = ("train", "val", "trainval")
_BASE = Path("VOCdevkit") / "VOC2012"


def voc_palette() -> list[int]:
    """The VOC colour map (256 RGB triples, flattened), as in the devkit's ``labelcolormap.m``."""
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def _png(index: np.ndarray) -> bytes:
    img = Image.fromarray(index.astype(np.uint8))
    img.putpalette(voc_palette())  # L -> P: pixel values stay class indices
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _void_border(index: np.ndarray) -> np.ndarray:
    """Set pixels whose 4-neighbours disagree to 255 (VOC's 'void' outline that losses ignore)."""
    out = index.copy()
    edge = np.zeros(index.shape, dtype=bool)
    edge[1:] |= index[1:] != index[:-1]
    edge[:-1] |= index[1:] != index[:-1]
    edge[:, 1:] |= index[:, 1:] != index[:, :-1]
    edge[:, :-1] |= index[:, 1:] != index[:, :-1]
    out[edge] = 255
    return out


def _xml(image_id: str, size: int, scene, classes) -> bytes:
    ann = ET.Element("annotation")
    ET.SubElement(ann, "folder").text = "VOC2012"
    ET.SubElement(ann, "filename").text = f"{image_id}.jpg"
    ET.SubElement(ET.SubElement(ann, "source"), "database").text = "shapes world (course_utils)"
    sz = ET.SubElement(ann, "size")
    for tag, val in (("width", size), ("height", size), ("depth", 3)):
        ET.SubElement(sz, tag).text = str(val)
    ET.SubElement(ann, "segmented").text = "1"
    for shape, (x0, y0, x1, y1) in zip(scene["shape"], scene["boxes"]):
        obj = ET.SubElement(ann, "object")
        ET.SubElement(obj, "name").text = classes[int(shape) + 1]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = str(int(x0 == 0 or y0 == 0 or x1 == size or y1 == size))
        ET.SubElement(obj, "difficult").text = "0"
        box = ET.SubElement(obj, "bndbox")
        for tag, val in (("xmin", x0 + 1), ("ymin", y0 + 1), ("xmax", x1), ("ymax", y1)):
            ET.SubElement(box, tag).text = str(int(val))
    ET.indent(ann)
    return ET.tostring(ann, encoding="utf-8")


def write_voc(folder: Path, splits: dict, classes, segmented: dict | None = None) -> None:
    """Write {split: (images uint8 NHWC, scenes)} under ``folder/VOCdevkit/VOC2012``; ids are split-NNNNNN.

    A split may also be a sized iterable of (image, scene) pairs (see ``cache.split_items``).

    ``segmented``: {split: n} gives masks to the first n images of each split only (VOC2012 has masks for
    2,913 of its 11,540 detection images); default: every image.
    """
    base = Path(folder) / _BASE
    for sub in ("JPEGImages", "Annotations", "SegmentationClass", "SegmentationObject", "ImageSets/Main",
                "ImageSets/Segmentation"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    all_ids, all_seg = [], []
    for split, part in splits.items():
        n, items = split_items(part)
        ids = [f"{split}_{i:06d}" for i in range(n)]
        seg = ids[:segmented[split]] if segmented is not None else ids
        masked = set(seg)
        for image_id, (img, sc) in zip(ids, items):
            Image.fromarray(img).save(base / "JPEGImages" / f"{image_id}.jpg", **JPEG)
            (base / "Annotations" / f"{image_id}.xml").write_bytes(_xml(image_id, img.shape[0], sc, classes))
            if image_id not in masked:
                continue  # detection only, like most VOC2012 images
            cls = np.zeros(img.shape[:2], dtype=np.int64)
            inst = np.zeros(img.shape[:2], dtype=np.int64)
            for k, (shape, mask) in enumerate(zip(sc["shape"], sc["masks"]), 1):
                cls[mask], inst[mask] = int(shape) + 1, k
            (base / "SegmentationClass" / f"{image_id}.png").write_bytes(_png(_void_border(cls)))
            (base / "SegmentationObject" / f"{image_id}.png").write_bytes(_png(_void_border(inst)))
        (base / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(i + "\n" for i in ids))
        (base / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("".join(i + "\n" for i in seg))
        all_ids += ids
        all_seg += seg
    (base / "ImageSets" / "Main" / "trainval.txt").write_text("".join(i + "\n" for i in all_ids))
    (base / "ImageSets" / "Segmentation" / "trainval.txt").write_text("".join(i + "\n" for i in all_seg))


def _open(cls, root: Path, split: str):
    if split not in SPLITS:
        raise DataError(f"VOC has no split {split!r}: use one of {', '.join(SPLITS)}")
    if not (Path(root) / _BASE).is_dir():
        raise DataError(f"{root} has no {_BASE.as_posix()}/ folder: wrong root? Pass the folder that contains "
                        "VOCdevkit (for real data that is course_utils.paths.data_dir()).")
    return cls(str(root), year="2012", image_set=split, download=False)


class VOCDetectionSet(Dataset):
    """torchvision's VOCDetection -> (Image uint8 (3, H, W), {"boxes": BoundingBoxes xyxy, "labels": int64})."""

    def __init__(self, root: str | Path, split: str = "train", classes=VOC_CLASSES, transforms=None):
        self.voc = _open(VOCDetection, Path(root), split)
        self.classes, self.transforms = list(classes), transforms
        self._index = {c: i for i, c in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.voc)

    def __getitem__(self, i: int):
        pil, target = self.voc[i]
        ann = target["annotation"]
        objs = ann.get("object", [])
        objs = [objs] if isinstance(objs, dict) else objs
        w, h = int(ann["size"]["width"]), int(ann["size"]["height"])
        if (w, h) != pil.size:
            raise DataError(f"{self.voc.annotations[i]} says the image is {w}x{h} but "
                            f"{self.voc.images[i]} is {pil.size[0]}x{pil.size[1]}: fix or drop this pair.")
        boxes, labels = [], []
        for o in objs:
            b = [int(float(o["bndbox"][k])) for k in ("xmin", "ymin", "xmax", "ymax")]
            if not (1 <= b[0] <= b[2] <= w and 1 <= b[1] <= b[3] <= h):
                raise DataError(f"{self.voc.annotations[i]}: box {b} of {o['name']!r} lies outside the "
                                f"{w}x{h} image (VOC boxes are 1-based, inclusive); fix the XML or drop it.")
            if o["name"] not in self._index:
                raise DataError(f"{self.voc.annotations[i]}: unknown class {o['name']!r}; known: {self.classes[1:]}")
            boxes.append([b[0] - 1, b[1] - 1, b[2], b[3]])
            labels.append(self._index[o["name"]])
        image = tv_tensors.Image(F.pil_to_tensor(pil))
        target = {"boxes": tv_tensors.BoundingBoxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                                                    format="XYXY", canvas_size=(h, w)),
                  "labels": torch.tensor(labels, dtype=torch.int64)}
        return self.transforms(image, target) if self.transforms else (image, target)


class VOCSegmentationSet(Dataset):
    """torchvision's VOCSegmentation -> (Image uint8 (3, H, W), Mask int64 (H, W): class index, 255 = void)."""

    def __init__(self, root: str | Path, split: str = "train", classes=VOC_CLASSES, transforms=None):
        self.voc = _open(VOCSegmentation, Path(root), split)
        self.classes, self.transforms = list(classes), transforms

    def __len__(self) -> int:
        return len(self.voc)

    def __getitem__(self, i: int):
        pil, mask = self.voc[i]
        if mask.size != pil.size:
            raise DataError(f"mask {self.voc.masks[i]} is {mask.size[0]}x{mask.size[1]} but its image is "
                            f"{pil.size[0]}x{pil.size[1]}: masks must match their image pixel for pixel.")
        if mask.mode != "P":
            raise DataError(f"mask {self.voc.masks[i]} is mode {mask.mode}, not a palette (P) PNG of class indices.")
        image = tv_tensors.Image(F.pil_to_tensor(pil))
        target = tv_tensors.Mask(torch.from_numpy(np.array(mask)).long())
        return self.transforms(image, target) if self.transforms else (image, target)
