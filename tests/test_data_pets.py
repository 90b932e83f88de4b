"""Oxford-IIIT Pet and Flowers-102 layouts, read by torchvision's OxfordIIITPet and Flowers102."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.datasets import Flowers102

from course_utils.data import DataError, datasets, shapes
from course_utils.data.flowers import FlowersSet
from course_utils.data.pets import PetsSet


@pytest.fixture(scope="module")
def pets_root(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("COURSE_DATA", str(tmp_path_factory.mktemp("pets")))
    yield datasets.shapes_set("pets", sizes=(48, 12, 4)), datasets.shapes_set("flowers102", sizes=(48, 12, 4))
    mp.undo()


def test_pets_labels_and_trimaps(pets_root):
    root = pets_root[0]
    ds = PetsSet(root, "trainval")
    images, scenes = shapes.make_scenes(16, 48, 0, max_objects=1, radius=(0.22, 0.42))
    kept = [sc for sc in scenes[:12] if len(sc["shape"])]
    assert len(ds) == len(kept)
    for i in (0, 3):
        img, label = ds[i]
        assert img.shape == (3, 48, 48) and img.dtype == torch.uint8
        assert ds.classes[label] == shapes.SHAPES[kept[i]["shape"][0]].capitalize()
    _, trimap = PetsSet(root, "trainval", segmentation=True)[0]
    fg = kept[0]["masks"][0]
    t = trimap.numpy()
    assert set(np.unique(t)) <= {0, 1, 2}  # object, background, border (torchvision's 1/2/3 minus one)
    assert (fg & (t != 2)).any() and (~fg & (t != 2)).any()  # both regions exist, so the next line tests something
    assert (t[fg & (t != 2)] == 0).all() and (t[~fg & (t != 2)] == 1).all()


def test_pets_boxes_surround_the_object_and_its_border(pets_root):
    root = pets_root[0]
    boxed, labelled, seg = PetsSet(root, "trainval", boxes=True), PetsSet(root, "trainval"), \
        PetsSet(root, "trainval", segmentation=True)
    images, scenes = shapes.make_scenes(16, 48, 0, max_objects=1, radius=(0.22, 0.42))
    kept = [sc for sc in scenes[:12] if len(sc["shape"])]
    for i in (0, 5):
        img, target = boxed[i]
        assert torch.equal(img, labelled[i][0])
        assert target["labels"].tolist() == [labelled[i][1]]
        assert target["boxes"].format.name == "XYXY" and tuple(target["boxes"].canvas_size) == (48, 48)
        x0, y0, x1, y1 = target["boxes"][0].tolist()
        t = seg[i][1]
        inside = t[int(y0):int(y1), int(x0):int(x1)]
        assert (t != 1).sum() == (inside != 1).sum()  # every object/border pixel is inside the box ...
        for edge in (t[int(y0)], t[int(y1) - 1], t[:, int(x0)], t[:, int(x1) - 1]):
            assert (edge != 1).any()  # ... and the box is the tightest one
        ox0, oy0, ox1, oy1 = kept[i]["boxes"][0]  # the object's own box, grown by the 1-pixel border
        assert (x0, y0, x1, y1) == (max(ox0 - 1, 0), max(oy0 - 1, 0), min(ox1 + 1, 48), min(oy1 + 1, 48))


def test_pets_errors(pets_root, tmp_path):
    with pytest.raises(DataError, match="no split 'train'"):
        PetsSet(pets_root[0], "train")
    with pytest.raises(DataError, match="wrong root"):
        PetsSet(tmp_path, "test")
    with pytest.raises(DataError, match="not both"):
        PetsSet(pets_root[0], "test", segmentation=True, boxes=True)


def test_flowers_read_by_torchvision_with_our_checksums(pets_root):
    root = pets_root[1]
    ds = FlowersSet(root, "train", synthetic=True)
    assert len(ds) == 6 and len(FlowersSet(root, "val", synthetic=True)) == 6
    assert len(FlowersSet(root, "test", synthetic=True)) == 4
    assert ds.classes == list(shapes.SHAPES)
    img, label = ds[0]
    assert img.shape == (3, 48, 48) and 0 <= label < 10
    with pytest.raises(RuntimeError):  # the official md5 table rejects our files: checks stay on
        Flowers102(str(root), split="train")


def test_flowers_corrupt_mat(pets_root, tmp_path):
    import shutil

    root = tmp_path / "f"
    shutil.copytree(pets_root[1], root)
    path = root / "flowers-102" / "setid.mat"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="fail their md5 check"):
        FlowersSet(root, "train", synthetic=True)


def test_flowers_files_byte_stable(pets_root, tmp_path, monkeypatch):
    # scipy writes a timestamp into .mat headers; ours is constant, so the files are identical
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    again = datasets.shapes_set("flowers102", sizes=(48, 12, 4))
    for name in ("imagelabels.mat", "setid.mat", "jpg/image_00003.jpg"):
        assert (again / "flowers-102" / name).read_bytes() == (pets_root[1] / "flowers-102" / name).read_bytes()
