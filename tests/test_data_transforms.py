"""v2 pipelines: computed normalisation stats, float outputs, targets transformed with their image."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

import course_utils
from course_utils.data import eval_transforms, get_dataset, load_tensors, norm_stats, train_transforms
from course_utils.data.transforms import IMAGENET_MEAN, TASK


@pytest.fixture(scope="module")
def cfg():
    return course_utils.setup("smoke", 0, quiet=True)


def test_shapes_stats_are_computed_from_train_images(cfg):
    mean, std = norm_stats("cifar10", cfg)
    s = load_tensors("cifar10", "train", cfg)
    assert np.allclose(mean, s.mean, atol=1e-3) and np.allclose(std, s.std, atol=1e-3)
    assert norm_stats("voc_seg", cfg) != (IMAGENET_MEAN, norm_stats("voc_seg", cfg)[1])


def test_real_pretrained_sets_use_imagenet_stats():
    light = course_utils.setup("light", 0, quiet=True)
    assert norm_stats("pets", light)[0] == IMAGENET_MEAN


@pytest.mark.parametrize("name", sorted(TASK))
def test_pipelines_give_float_normalised_images(name, cfg):
    split = "trainval" if name.startswith("pets") else "train"
    for make in (train_transforms, eval_transforms):
        torch.manual_seed(0)
        img, target = get_dataset(name, split, cfg, transforms=make(name, cfg))[0]
        assert img.dtype == torch.float32 and img.shape[0] == 3
        if TASK[name] == "detect":
            assert 0 <= img.min() and img.max() <= 1  # detection models normalise internally
            assert isinstance(target["boxes"], tv_tensors.BoundingBoxes)
        else:
            assert img.min() < 0 < img.max()  # normalised
        if TASK[name] == "segment":
            assert target.dtype == torch.int64 and target.shape == img.shape[1:]


def test_train_pipeline_flips_mask_with_image(cfg):
    tf = train_transforms("voc_seg", cfg)
    ds_plain = get_dataset("voc_seg", "train", cfg)
    ds = get_dataset("voc_seg", "train", cfg, transforms=tf)
    _, mask = ds_plain[5]
    seen = set()
    for seed in range(8):
        torch.manual_seed(seed)
        _, m = ds[5]
        flipped = torch.equal(m, mask.flip(-1))
        assert flipped or torch.equal(m, mask)
        seen.add(flipped)
    assert seen == {True, False}
