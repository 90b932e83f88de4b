"""TensorLoader: batches, normalisation, determinism, and augmentation checked against torchvision transforms."""
from __future__ import annotations

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from course_utils.train import TensorLoader


def _data(n=50, h=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, h, h), dtype=torch.uint8, generator=g), torch.arange(n)


def test_batches_cover_the_split_once_and_len_counts_them():
    x, y = _data(50)
    dl = TensorLoader(x, y, batch_size=16, seed=0)
    batches = list(dl)
    assert len(dl) == len(batches) == 4
    assert [len(b[1]) for b in batches] == [16, 16, 16, 2]
    seen = torch.cat([b[1] for b in batches])
    assert sorted(seen.tolist()) == list(range(50))  # a permutation: every sample exactly once
    assert seen.tolist() != list(range(50))  # and shuffled
    assert len(TensorLoader(x, y, batch_size=16, drop_last=True)) == 3
    assert [len(b[1]) for b in TensorLoader(x, y, batch_size=16, drop_last=True)] == [16, 16, 16]


def test_normalisation_matches_torchvision_normalize():
    x, y = _data(8)
    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    xb, yb = next(iter(TensorLoader(x, y, batch_size=8, shuffle=False, mean=mean, std=std)))
    ref = TF.normalize(x.float() / 255, mean, std)
    assert xb.dtype == torch.float32 and yb.dtype == torch.int64
    torch.testing.assert_close(xb, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(next(iter(TensorLoader(x, y, 8, shuffle=False)))[0], x.float() / 255)


def test_same_seed_same_batches_and_set_epoch_replays_an_epoch():
    x, y = _data(40)
    a = TensorLoader(x, y, 8, augment=True, seed=3)
    b = TensorLoader(x, y, 8, augment=True, seed=3)
    first_a, second_a = [list(a) for _ in range(2)]
    first_b = list(b)
    assert all(torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(first_a, first_b))
    assert not torch.equal(first_a[0][1], second_a[0][1])  # a new order each epoch
    b.set_epoch(1)
    assert all(torch.equal(p[0], q[0]) for p, q in zip(second_a, list(b)))


def test_augmentation_is_a_padded_crop_plus_optional_flip_of_each_image():
    x, y = _data(64, h=8)
    xb, yb = next(iter(TensorLoader(x, y, 64, shuffle=False, augment=True, seed=0)))
    padded = TF.pad(x.float() / 255, [4])  # zero padding, as RandomCrop(8, padding=4)
    flips = 0
    for i in range(64):
        crops = [TF.crop(padded[i], t, l, 8, 8) for t in range(9) for l in range(9)]
        plain = any(torch.allclose(xb[i], c) for c in crops)
        flipped = any(torch.allclose(xb[i], TF.horizontal_flip(c)) for c in crops)
        assert plain or flipped, f"image {i} is not a crop of the padded image"
        flips += flipped and not plain
    assert 10 < flips < 54  # about half flipped
    assert not torch.equal(xb, x.float() / 255)


def test_bad_images_are_rejected_with_a_hint():
    x, y = _data(4)
    with pytest.raises(ValueError, match="permute"):
        TensorLoader(x.permute(0, 2, 3, 1).contiguous(), y, 2)
    with pytest.raises(ValueError, match="uint8"):
        TensorLoader(x.float(), y, 2)
    with pytest.raises(ValueError, match="labels"):
        TensorLoader(x, y[:3], 2)


def test_batch_map_rebuilds_each_batch_and_passes_epochs_through():
    from course_utils.train import BatchMap, fit

    x, y = _data(40)
    base = TensorLoader(x, y, batch_size=16, seed=3)
    doubled = BatchMap(base, lambda xb, yb: (torch.cat([xb, xb.flip(-1)]), yb.repeat(2)))
    assert len(doubled) == len(base) == 3 and doubled.batch_size == 16
    doubled.set_epoch(2)
    got = list(doubled)
    base.set_epoch(2)
    want = list(base)
    for (xm, ym), (xb, yb) in zip(got, want):     # same order as the wrapped loader's epoch 2
        torch.testing.assert_close(xm, torch.cat([xb, xb.flip(-1)]))
        assert ym.tolist() == yb.tolist() * 2
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 40))
    hist = fit(model, doubled, epochs=2, lr=0.01, quiet=True, seed=0, task="classification")
    assert len(hist) == 2 and hist.config["batch_size"] == 16
