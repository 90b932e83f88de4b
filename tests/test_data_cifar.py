"""CIFAR pickle files: written by us, read by torchvision's own CIFAR code, checked by md5."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

import course_utils
from course_utils.data import DataError, cifar, load_tensors, shapes
from course_utils.data.cache import file_hash, read_manifest, shapes_dir


@pytest.fixture()
def small(tmp_path, monkeypatch):
    """A tiny generated CIFAR-10 set in a private data dir."""
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    return cifar.shapes_cifar("cifar10", seed=5, sizes=(100, 20))


def test_files_roundtrip_through_torchvision(small):
    ds = cifar.open_cifar(small, "cifar10", "train", synthetic=True)
    imgs, y, _ = shapes.make_classification(120, seed=5)
    assert np.array_equal(ds.data, imgs[:100]) and ds.targets == y[:100].tolist()
    assert ds.classes == list(shapes.SHAPES)
    with open(small / "cifar-10-batches-py" / "test_batch", "rb") as f:
        entry = pickle.load(f, encoding="latin1")  # the official layout: (N, 3072) planar RGB
    assert entry["data"].shape == (20, 3072)
    assert np.array_equal(entry["data"][0, :1024].reshape(32, 32), imgs[100, :, :, 0])


def test_byte_stable_across_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "a"))
    a = cifar.shapes_cifar("cifar100", seed=2, sizes=(200, 40))
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "b"))
    b = cifar.shapes_cifar("cifar100", seed=2, sizes=(200, 40))
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 4
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_truncated_pickle_is_named(small):
    path = small / "cifar-10-batches-py" / "data_batch_2"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match=r"data_batch_2 is corrupt: md5 expected [0-9a-f]{32}, got"):
        cifar.open_cifar(small, "cifar10", "train", synthetic=True)


def test_real_checksums_still_apply(small):
    # our files are not the official ones: torchvision's own table must reject them
    with pytest.raises(DataError, match="cs.toronto.edu"):
        cifar.open_cifar(small, "cifar10", "test")


def test_bad_split_and_root(small, tmp_path):
    with pytest.raises(DataError, match="no split 'val'"):
        cifar.open_cifar(small, "cifar10", "val", synthetic=True)
    with pytest.raises(DataError, match="wrong root"):
        cifar.open_cifar(tmp_path / "nowhere", "cifar10", "train", synthetic=True)
    (tmp_path / "x" / "cifar-10-batches-py").mkdir(parents=True)
    with pytest.raises(DataError, match="not a generated shapes set"):
        cifar.open_cifar(tmp_path / "x", "cifar10", "train", synthetic=True)


def test_load_tensors_smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    monkeypatch.setitem(cifar.SMOKE_SIZES, "cifar10", (200, 50))
    cfg = course_utils.setup("smoke", 0, quiet=True)
    s = load_tensors("cifar10", "train", cfg)
    assert s.images.shape == (200, 3, 32, 32) and s.images.dtype == torch.uint8
    assert s.labels.dtype == torch.int64 and s.source == "shapes-10 in CIFAR-10 pickle format"
    x = s.images.double() / 255
    assert np.allclose(s.mean, x.mean((0, 2, 3)).numpy(), atol=1e-4)
    assert np.allclose(s.std, x.std((0, 2, 3)).numpy(), atol=1e-4)
    sub = load_tensors("cifar10", "train", cfg, limit=55)
    assert sorted(sub.labels.bincount().tolist()) == [5] * 5 + [6] * 5
    assert torch.equal(sub.images, load_tensors("cifar10", "train", cfg, limit=55).images)
    # a damaged cache is ours: it is rebuilt, byte for byte
    folder = shapes_dir("cifar10", 0, (200, 50))
    md5 = read_manifest(folder)["files"]["cifar-10-batches-py/test_batch"]
    test_images = load_tensors("cifar10", "test", cfg).images
    (folder / "cifar-10-batches-py" / "test_batch").write_bytes(b"junk")
    assert torch.equal(load_tensors("cifar10", "test", cfg).images, test_images)
    assert read_manifest(folder)["files"]["cifar-10-batches-py/test_batch"] == md5
    assert file_hash(folder / "cifar-10-batches-py" / "test_batch") == md5


def test_cifar100_coarse_labels(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    monkeypatch.setitem(cifar.SMOKE_SIZES, "cifar100", (300, 100))
    s = load_tensors("cifar100", "test", course_utils.setup("smoke", 0, quiet=True))
    assert len(s.classes) == 100 and s.coarse_classes == list(shapes.CIFAR100_COARSE)
    assert torch.equal(s.coarse_labels, torch.tensor([2 * (int(f) // 10) + (shapes.CIFAR100_FINE[f].split("_")[0]
                                                                              not in shapes.WARM) for f in s.labels]))


def test_full_profile_offline_says_how_to_switch(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    cfg = course_utils.setup("full", 0, quiet=True)
    with pytest.raises(DataError, match=r"not in .* no dataset server is reachable.*profile='smoke'"):
        load_tensors("cifar10", "train", cfg)


def test_balanced_subset_reference():
    labels = torch.tensor([0, 0, 0, 1, 2, 2, 1, 0])
    assert cifar.balanced_subset(labels, 5).tolist() == [0, 1, 3, 4, 5]
    assert cifar.balanced_subset(labels, 3).tolist() == [0, 3, 4]


def test_load_tensors_upright_is_its_own_cached_world(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    monkeypatch.setitem(cifar.SMOKE_SIZES, "cifar10", (100, 20))
    cfg = course_utils.setup("smoke", 0, quiet=True)
    usual, up = load_tensors("cifar10", "train", cfg), load_tensors("cifar10", "train", cfg, upright=True)
    assert "upright" in up.source and "upright" not in usual.source
    assert torch.equal(up.labels, usual.labels) and not torch.equal(up.images, usual.images)
    folder = shapes_dir("cifar10-upright", 0, (100, 20))
    assert read_manifest(folder)["upright"] is True and "upright" not in read_manifest(shapes_dir("cifar10", 0, (100, 20)))
    imgs, _, _ = shapes.make_classification(120, 32, 0, 10, upright=True)
    assert torch.equal(up.images, torch.from_numpy(imgs[:100]).permute(0, 3, 1, 2))
