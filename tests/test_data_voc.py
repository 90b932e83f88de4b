"""Pascal VOC files written from scenes, read back by torchvision's VOCDetection/VOCSegmentation."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import VOCDetection
from torchvision.transforms import v2

from course_utils.data import DataError, shapes, voc

CLASSES = ("__background__", *shapes.SHAPES)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    folder = tmp_path_factory.mktemp("voc")
    images, scenes = shapes.make_scenes(10, size=64, seed=1)
    voc.write_voc(folder, {"train": (images[:6], scenes[:6]), "val": (images[6:], scenes[6:])}, CLASSES)
    return folder, images, scenes


def test_palette_matches_voc_colours():
    pal = np.array(voc.voc_palette()).reshape(256, 3)
    # reference colours from the VOC devkit: background, aeroplane, bicycle, person, void
    assert pal[0].tolist() == [0, 0, 0] and pal[1].tolist() == [128, 0, 0] and pal[2].tolist() == [0, 128, 0]
    assert pal[15].tolist() == [192, 128, 128] and pal[255].tolist() == [224, 224, 192]


def test_detection_roundtrip(root):
    folder, images, scenes = root
    ds = voc.VOCDetectionSet(folder, "train", CLASSES)
    raw = VOCDetection(str(folder), image_set="train")[0][1]["annotation"]["object"]
    assert int(raw[0]["bndbox"]["xmin"]) == int(scenes[0]["boxes"][0][0]) + 1  # VOC is 1-based
    for i in range(len(ds)):
        img, target = ds[i]
        assert img.dtype == torch.uint8 and img.shape == (3, 64, 64)
        assert np.abs(img.permute(1, 2, 0).numpy().astype(int) - images[i]).mean() < 5  # JPEG q95, 4:4:4
        assert torch.equal(target["boxes"], torch.tensor(scenes[i]["boxes"]))
        assert target["labels"].tolist() == (scenes[i]["shape"] + 1).tolist()
    assert len(voc.VOCDetectionSet(folder, "trainval", CLASSES)) == 10


def test_segmentation_roundtrip(root):
    folder, _, scenes = root
    ds = voc.VOCSegmentationSet(folder, "val", CLASSES)
    _, mask = ds[1]
    assert Image.open(folder / "VOCdevkit/VOC2012/SegmentationClass/val_000001.png").mode == "P"
    expected = np.zeros((64, 64), dtype=np.int64)
    for s, m in zip(scenes[7]["shape"], scenes[7]["masks"]):
        expected[m] = s + 1
    got = mask.numpy()
    void = got == 255
    assert void.any() and (got[~void] == expected[~void]).all()
    assert void.mean() < 0.2  # only the outlines are void


def test_boxes_and_masks_move_with_the_image(root):
    folder, _, scenes = root
    flip = v2.RandomHorizontalFlip(p=1.0)
    img, target = voc.VOCDetectionSet(folder, "train", CLASSES, transforms=flip)[2]
    x0, y0, x1, y1 = torch.tensor(scenes[2]["boxes"]).unbind(1)
    assert torch.equal(target["boxes"], torch.stack([64 - x1, y0, 64 - x0, y1], 1))
    plain = voc.VOCSegmentationSet(folder, "train", CLASSES)[2][1]
    assert torch.equal(voc.VOCSegmentationSet(folder, "train", CLASSES, transforms=flip)[2][1], plain.flip(-1))


def test_box_outside_image(root, tmp_path):
    folder = tmp_path / "bad"
    shutil.copytree(root[0], folder)
    xml = folder / "VOCdevkit/VOC2012/Annotations/train_000000.xml"
    text = xml.read_text()
    start = text.index("<xmax>") + len("<xmax>")
    xml.write_text(text[:start] + "999" + text[text.index("</xmax>"):])
    with pytest.raises(DataError, match=r"train_000000.xml: box \[.*999.*\] .* outside the 64x64 image"):
        voc.VOCDetectionSet(folder, "train", CLASSES)[0]


def test_mask_of_wrong_size(root, tmp_path):
    folder = tmp_path / "bad"
    shutil.copytree(root[0], folder)
    png = folder / "VOCdevkit/VOC2012/SegmentationClass/train_000001.png"
    Image.open(png).resize((32, 32), Image.NEAREST).save(png)
    with pytest.raises(DataError, match="train_000001.png is 32x32 but its image is 64x64"):
        voc.VOCSegmentationSet(folder, "train", CLASSES)[1]


def test_wrong_split_and_root(root, tmp_path):
    with pytest.raises(DataError, match="no split 'test'"):
        voc.VOCDetectionSet(root[0], "test", CLASSES)
    with pytest.raises(DataError, match="wrong root"):
        voc.VOCSegmentationSet(tmp_path, "train", CLASSES)


def test_written_twice_byte_identical(written_twice):
    a, b, files = written_twice("voc", (48, 4, 2))
    assert len(files) > 20
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
