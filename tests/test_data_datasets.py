"""get_dataset in the smoke profile: every name gives the right sample types, from the one test cache."""
from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors

import course_utils
from course_utils.data import DataError, NAMES, get_dataset, is_cached
from course_utils.data.datasets import splits_of


@pytest.fixture(scope="module")
def cfg():
    return course_utils.setup("smoke", 0, quiet=True)


@pytest.mark.parametrize("name", [n for n in NAMES if not n.startswith("cifar")])
def test_every_dataset_in_smoke(name, cfg):
    ds = get_dataset(name, splits_of(name)[0], cfg)
    img, target = ds[0]
    assert isinstance(img, tv_tensors.Image) and img.dtype == torch.uint8 and img.shape[0] == 3
    if name in ("voc_det", "coco_det", "pets_box"):
        assert isinstance(target["boxes"], tv_tensors.BoundingBoxes) and target["boxes"].format.name == "XYXY"
        assert len(target["labels"]) == len(target["boxes"]) >= 1
    elif name in ("voc_seg", "pets_seg"):
        assert isinstance(target, tv_tensors.Mask) and target.shape == img.shape[1:]
    elif name == "captions":
        assert isinstance(target, list) and target[0].startswith("a ")
    else:
        assert 0 <= target < len(ds.classes)


def test_names_and_splits_checked(cfg):
    with pytest.raises(DataError, match="unknown dataset 'imagenet'"):
        get_dataset("imagenet", "train", cfg)
    with pytest.raises(DataError, match="pets has no split 'train': use one of trainval, test"):
        get_dataset("pets", "train", cfg)


def test_full_profile_offline_is_one_clear_message(cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    full = course_utils.setup("full", 0, quiet=True)
    assert not is_cached("voc_det")
    with pytest.raises(DataError, match=r"Pascal VOC 2012 trainval \(voc\) is not in .*profile='smoke'"):
        get_dataset("voc_det", "train", full)
