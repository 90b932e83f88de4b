"""COCO JSON written from scenes, read back by torchvision's CocoDetection/CocoCaptions and pycocotools."""
from __future__ import annotations

import contextlib
import io
import json
import shutil

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from course_utils.data import DataError, coco, shapes
from course_utils.data.captions import scene_captions


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    folder = tmp_path_factory.mktemp("coco")
    images, scenes = shapes.make_scenes(8, size=64, seed=2)
    parts = {"train": (images[:5], scenes[:5]), "val": (images[5:], scenes[5:])}
    caps = {s: [scene_captions(sc, 64) for sc in p[1]] for s, p in parts.items()}
    coco.write_coco(folder, parts, shapes.SHAPES, captions=caps)
    return folder, images, scenes


def test_pycocotools_reads_boxes_and_masks(root):
    folder, _, scenes = root
    with contextlib.redirect_stdout(io.StringIO()):
        api = COCO(str(folder / "annotations" / "instances_train.json"))
    anns = api.loadAnns(api.getAnnIds(imgIds=[3]))
    assert len(anns) == len(scenes[2]["shape"])
    for ann, box, mask in zip(anns, scenes[2]["boxes"], scenes[2]["masks"]):
        x0, y0, x1, y1 = box
        assert ann["bbox"] == [x0, y0, x1 - x0, y1 - y0] and ann["area"] == mask.sum()
        assert np.array_equal(api.annToMask(ann), mask)


def test_detection_roundtrip(root):
    folder, _, scenes = root
    ds = coco.CocoDetectionSet(folder, "val")
    assert len(ds) == 3 and ds.classes == ["__background__", *shapes.SHAPES]
    img, t = ds[1]
    assert img.shape == (3, 64, 64) and img.dtype == torch.uint8
    assert torch.equal(t["boxes"], torch.tensor(scenes[6]["boxes"]))
    assert t["labels"].tolist() == (scenes[6]["shape"] + 1).tolist()
    assert np.array_equal(t["masks"].numpy().astype(bool), scenes[6]["masks"])


def test_captions_roundtrip(root):
    folder, _, scenes = root
    ds = coco.CocoCaptionSet(folder, "train")
    img, caps = ds[4]
    assert img.shape == (3, 64, 64) and caps == scene_captions(scenes[4], 64)


def test_box_outside_image(root, tmp_path):
    folder = tmp_path / "bad"
    shutil.copytree(root[0], folder)
    path = folder / "annotations" / "instances_val.json"
    doc = json.loads(path.read_text())
    doc["annotations"][0]["bbox"] = [50.0, 10.0, 40.0, 5.0]  # reaches x = 90 in a 64-wide image
    path.write_text(json.dumps(doc))
    image = doc["images"][doc["annotations"][0]["image_id"] - 1]["file_name"]
    with pytest.raises(DataError, match=f"{image}: a box lies outside the 64x64 image"):
        coco.CocoDetectionSet(folder, "val")[doc["annotations"][0]["image_id"] - 1]


def test_wrong_split_and_root(root, tmp_path):
    with pytest.raises(DataError, match="no split 'test'"):
        coco.CocoDetectionSet(root[0], "test")
    with pytest.raises(DataError, match="wrong root"):
        coco.CocoCaptionSet(tmp_path, "train")


def test_written_twice_byte_identical(written_twice):
    a, b, files = written_twice("captions", (48, 4, 2))
    assert any(f.name == "captions_train.json" for f in files)
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
