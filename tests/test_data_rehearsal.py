"""Which data a run reads, and the shapes world at real sizes in the real layouts (at tiny sizes here)."""
from __future__ import annotations

import json
import types
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch

from course_utils.data import DataError, datasets, load_tensors, norm_stats, registry, rehearsal, shapes
from course_utils.data.cifar import SMOKE_SIZES
from course_utils.data.source import ENV, is_rehearsal, resolve_source, source_of

TINY = {"cifar10": (60, 20), "cifar100": (200, 40), "voc": (48, 12, 8, 5, 3), "coco": (48, 20), "pets": (40, 150, 30),
        "flowers102": (48, 12, 8)}


def cfg(profile: str, source: str | None = None):
    return types.SimpleNamespace(profile=profile, data_source=source)


@pytest.mark.parametrize("profile,asked,env,expected", [
    ("smoke", None, None, "shapes"),
    ("smoke", None, "real", "shapes"),      # smoke always reads the small shapes world
    ("light", None, None, "real"),
    ("full", None, None, "real"),
    ("light", None, "shapes", "shapes"),
    ("full", None, "SHAPES", "shapes"),
    ("light", "real", "shapes", "real"),    # asked for in setup() beats the environment
    ("light", "shapes", None, "shapes"),
])
def test_resolve_source(monkeypatch, profile, asked, env, expected):
    if env is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, env)
    assert resolve_source(profile, asked) == expected
    assert is_rehearsal(cfg(profile, expected)) == (profile != "smoke" and expected == "shapes")


def test_bad_sources_are_clear_errors(monkeypatch):
    monkeypatch.setenv(ENV, "imagenet")
    with pytest.raises(DataError, match="COURSE_DATA_SOURCE='imagenet'"):
        resolve_source("light")
    with pytest.raises(ValueError, match="smoke runs on the small shapes world only"):
        resolve_source("smoke", "real")
    with pytest.raises(ValueError, match="data='web'"):
        resolve_source("light", "web")


def test_source_of_a_cfg_without_the_field_reads_the_environment(monkeypatch):
    monkeypatch.setenv(ENV, "shapes")
    assert source_of(types.SimpleNamespace(profile="light")) == "shapes"
    monkeypatch.delenv(ENV)
    assert source_of(types.SimpleNamespace(profile="light")) == "real"


@pytest.fixture()
def tiny(tmp_path, monkeypatch):
    """Real sizes shrunk to a few images, a private data dir, and a network that must not be used."""
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    monkeypatch.delenv(ENV, raising=False)
    for name, sizes in TINY.items():
        monkeypatch.setitem(rehearsal.REAL_SIZES, name, sizes)

    def no_network(*args, **kwargs):
        raise AssertionError("a rehearsal touched the network")

    monkeypatch.setattr(registry, "_online", no_network)
    monkeypatch.setattr("course_utils.data.download.download", no_network)
    return tmp_path


@pytest.mark.parametrize("name", list(registry.REAL))
def test_ensure_serves_the_real_layout_without_the_network(tiny, name):
    root = registry.ensure(name, progress=False, source="shapes")
    spec = registry.REAL[name]
    base = root if spec.folder == "." else root.parent
    assert root.name == (spec.folder if spec.folder != "." else root.name)
    missing = [rel for rel in spec.expect if not (base / spec.folder / rel).exists()]
    assert not missing, f"{name}: the real layout's files {missing} are absent"  # what is_cached checks for real data


def test_ensure_reads_the_environment(tiny, monkeypatch):
    monkeypatch.setenv(ENV, "shapes")
    assert registry.ensure("pets", progress=False) == registry.ensure("pets", progress=False, source="shapes")


def test_cifar_at_real_size_through_load_tensors_and_get_dataset(tiny):
    light = cfg("light", "shapes")
    train, test = load_tensors("cifar10", "train", light), load_tensors("cifar10", "test", light)
    assert train.images.shape == (60, 3, 32, 32) and train.images.dtype == torch.uint8 and len(test) == 20
    assert "rehearsal" in train.source
    imgs, fine, _ = shapes.make_classification(80, 32, rehearsal.SEED, 10)
    assert torch.equal(train.images, torch.from_numpy(imgs[:60]).permute(0, 3, 1, 2))
    assert torch.equal(test.labels, torch.from_numpy(fine[60:]))
    assert len(load_tensors("cifar10", "train", light, limit=30)) == 30
    assert len(datasets.get_dataset("cifar10", "test", light)) == 20
    c100 = load_tensors("cifar100", "train", light)
    assert len(c100.classes) == 100 and len(c100.coarse_classes) == 20 and c100.coarse_labels.max() < 20
    mean, std = norm_stats("cifar10", light)
    assert np.allclose(mean, train.mean, atol=1e-4) and np.allclose(std, train.std, atol=1e-4)
    assert not (tiny / "stats.json").exists()  # the real CIFAR stats cache is left alone


def test_smoke_ignores_the_rehearsal_switch(tiny, monkeypatch):
    monkeypatch.setitem(SMOKE_SIZES, "cifar10", (30, 10))
    monkeypatch.setenv(ENV, "shapes")
    assert len(load_tensors("cifar10", "train", cfg("smoke", "shapes"))) == 30


def test_voc_sizes_and_segmentation_subset(tiny):
    light = cfg("light", "shapes")
    det, seg = datasets.get_dataset("voc_det", "train", light), datasets.get_dataset("voc_seg", "val", light)
    assert len(det) == 12 and len(datasets.get_dataset("voc_det", "val", light)) == 8
    assert len(seg) == 3 and len(datasets.get_dataset("voc_seg", "train", light)) == 5
    image, target = det[0]
    assert image.shape == (3, 48, 48) and det.classes[0] == "__background__" and target["labels"].min() >= 1
    _, mask = seg[0]
    assert mask.shape == (48, 48) and set(mask.unique().tolist()) <= set(range(11)) | {255}
    base = registry.ensure("voc", source="shapes") / "VOCdevkit" / "VOC2012"
    masks = {p.stem for p in (base / "SegmentationClass").glob("*.png")}
    assert masks == set((base / "ImageSets" / "Segmentation" / "trainval.txt").read_text().split())
    assert ET.parse(base / "Annotations" / "train_000000.xml").find("size/width").text == "48"


def test_coco_is_val2017_cut_80_20_with_captions(tiny):
    light = cfg("light", "shapes")
    train, val = datasets.get_dataset("coco_det", "train", light), datasets.get_dataset("coco_det", "val", light)
    assert (len(train), len(val)) == (16, 4)
    image, target = val[0]
    assert image.shape == (3, 48, 48) and target["masks"].shape[-2:] == (48, 48)
    caps = datasets.get_dataset("captions", "val", light)
    assert len(caps) == 4 and all(isinstance(c, str) and c for c in caps[0][1])
    root = registry.ensure("coco", source="shapes")
    ann = json.loads((root / "annotations" / "instances_val2017.json").read_text())
    assert len(ann["images"]) == 20 and (root / "val2017" / ann["images"][0]["file_name"]).is_file()


def test_pets_has_37_classes_from_colour_and_shape(tiny):
    light = cfg("light", "shapes")
    trainval, test = datasets.get_dataset("pets", "trainval", light), datasets.get_dataset("pets", "test", light)
    assert (len(trainval), len(test)) == (150, 30)  # one large object per image: none is dropped
    assert len(trainval.classes) == rehearsal.PETS_CLASSES
    _, scenes = shapes.make_scenes(180, 40, rehearsal.SEED, max_objects=1, radius=(0.22, 0.42))
    want = [(int(s["shape"][0]) * len(shapes.COLOURS) + int(s["colour"][0])) % 37 for s in scenes[:150]]
    got = [int(trainval.ds._labels[i]) for i in range(150)]
    assert got == want
    _, trimap = datasets.get_dataset("pets_seg", "test", light)[0]
    assert set(trimap.unique().tolist()) == {0, 1, 2}


def test_flowers_labels_are_colour_x_shape(tiny):
    light = cfg("light", "shapes")
    train, val, test = (datasets.get_dataset("flowers102", s, light) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (6, 6, 8)
    assert train.classes == list(shapes.CIFAR100_FINE)
    _, scenes = shapes.make_scenes(20, 48, rehearsal.SEED, max_objects=1, radius=(0.22, 0.42))
    s = scenes[0]
    assert train[0][1] == int(s["shape"][0]) * len(shapes.COLOURS) + int(s["colour"][0])


def test_scene_chunks_change_only_above_128_pixels():
    # images up to 128x128 render 128 at a time, as before: every smoke set stays byte for byte what it was
    import hashlib

    images, scenes = shapes.make_scenes(130, 24, 7, max_objects=2)  # crosses a chunk boundary
    digest = hashlib.sha1(images.tobytes() + b"".join(s["masks"].tobytes() for s in scenes)).hexdigest()
    assert digest == "ebd24cccbf4d8d01e2873e57c1b906e7f69762cb"  # the generator before the change
    big, scenes = shapes.make_scenes(12, 400, 0, max_objects=2)  # 13 at a time at this side
    assert big.shape == (12, 400, 400, 3) and len(scenes) == 12
    for s in scenes:  # boxes are the visible masks' extents, also in the larger chunks
        for box, mask in zip(s["boxes"], s["masks"]):
            ys, xs = np.nonzero(mask)
            assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def test_real_size_worlds_are_written_while_they_are_rendered(tiny, monkeypatch):
    # memory stays at one chunk: files of earlier chunks exist before the next chunk is rendered
    real, seen = shapes.iter_scenes, []

    def two_at_a_time(n, size, seed, **kwargs):
        for images, scenes in real(n, size, seed, **kwargs):
            for i in range(0, len(images), 2):
                seen.append(len(list(tiny.rglob("*.jpg"))))  # JPEGs on disk when this chunk is handed out
                yield images[i:i + 2], scenes[i:i + 2]

    monkeypatch.setattr(shapes, "iter_scenes", two_at_a_time)
    registry.ensure("pets", progress=False, source="shapes")
    assert seen == list(range(0, 180, 2))
