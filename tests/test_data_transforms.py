"""v2 pipelines: computed normalisation stats, float outputs, targets transformed with their image."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

import course_utils
from course_utils.data import eval_transforms, get_dataset, load_tensors, norm_stats, train_transforms
from course_utils.data.stats import channel_stats
from course_utils.data.transforms import IMAGENET_MEAN, TASK


@pytest.fixture(scope="module")
def cfg():
    return course_utils.setup("smoke", 0, quiet=True)


def test_channel_stats_hand_computed_and_against_numpy():
    two = np.array([[[[0, 255]], [[51, 51]], [[0, 0]]]], dtype=np.uint8)  # N×C×H×W = 1×3×1×2
    assert channel_stats(two) == ((0.5, 0.2, 0.0), (0.5, 0.0, 0.0))  # population std: (0, 1) -> 0.5
    g = np.random.default_rng(0)
    hwc = g.integers(0, 256, (7, 5, 6, 3), dtype=np.uint8)
    x = hwc.reshape(-1, 3) / 255
    ref = (tuple(np.round(x.mean(0), 4)), tuple(np.round(x.std(0), 4)))
    assert channel_stats(hwc, "NHWC") == ref
    assert channel_stats(torch.from_numpy(hwc).permute(0, 3, 1, 2)) == ref  # the same images, N×C×H×W


def test_shapes_stats_are_computed_from_train_images(cfg):
    mean, std = norm_stats("cifar10", cfg)
    s = load_tensors("cifar10", "train", cfg)
    assert (mean, std) == (s.mean, s.std) == channel_stats(s.images)  # manifest and ImageSet agree exactly
    voc = get_dataset("voc_seg", "train", cfg)
    images = torch.stack([voc[i][0] for i in range(len(voc))])  # the shapes VOC's training images, from JPEG
    mean, std = norm_stats("voc_seg", cfg)  # from the rendered images, before JPEG: close, not equal
    from_jpeg = channel_stats(images)
    assert np.allclose(mean, from_jpeg[0], atol=2e-3) and np.allclose(std, from_jpeg[1], atol=2e-3)
    assert mean != IMAGENET_MEAN


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
