"""The shapes generator: deterministic, balanced, consistent labels, masks and boxes, fast."""
from __future__ import annotations

import time

import numpy as np

from course_utils.data import shapes


def test_classification_is_seeded_and_balanced():
    a, y, c = shapes.make_classification(200, seed=3)
    b, y2, _ = shapes.make_classification(200, seed=3)
    other, _, _ = shapes.make_classification(200, seed=4)
    assert a.shape == (200, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and np.array_equal(y, y2)
    assert not np.array_equal(a, other)
    assert np.bincount(y, minlength=10).tolist() == [20] * 10
    assert a.std() > 30  # textured, not flat


def test_cifar100_fine_and_coarse_names_agree():
    _, fine, coarse = shapes.make_classification(300, classes=100, seed=0)
    assert len(shapes.CIFAR100_FINE) == 100 and len(shapes.CIFAR100_COARSE) == 20
    assert np.bincount(coarse, minlength=20).min() > 0
    for f, c in zip(fine[:100], coarse[:100]):
        colour, shape = shapes.CIFAR100_FINE[f].split("_")
        group, shapes_name = shapes.CIFAR100_COARSE[c].split("_")
        assert shapes_name == shape + "s"
        assert (group == "warm") == (colour in shapes.WARM)
    # each superclass holds exactly 5 fine classes, as in real CIFAR-100
    pairs = {(shapes.CIFAR100_FINE.index(f"{col}_{s}"), 2 * i + (col not in shapes.WARM))
             for i, s in enumerate(shapes.SHAPES) for col in shapes.COLOURS}
    assert np.bincount([p[1] for p in pairs]).tolist() == [5] * 20


def test_object_is_drawn_where_the_shape_says():
    # the object's colour dominates the centre region of an unoccluded render more than the border
    img, y, _ = shapes.make_classification(50, seed=1)
    assert img.shape[1:] == (32, 32, 3)
    cover = shapes._coverage(np.array([0]), np.array([16.0]), np.array([16.0]), np.array([10.0]),
                             np.array([0.0]), 32)[0]
    yy, xx = np.mgrid[:32, :32] + 0.5
    inside = (xx - 16) ** 2 + (yy - 16) ** 2 < 0.8 * 100  # circle of radius sqrt(0.8)*10
    assert abs(cover.sum() - inside.sum()) / inside.sum() < 0.05


def test_every_shape_is_bounded_and_filled():
    # each class covers a compact region around its centre (a sign error once drew a star's complement)
    n = len(shapes.SHAPES)
    cover = shapes._coverage(np.arange(n), np.full(n, 32.0), np.full(n, 32.0), np.full(n, 20.0), np.zeros(n), 64)
    for k, name in enumerate(shapes.SHAPES):
        ys, xs = np.nonzero(cover[k] > 0.5)
        assert 0.25 < cover[k].sum() / (np.pi * 20 ** 2) < 0.95, name
        assert xs.min() >= 10 and xs.max() <= 53 and ys.min() >= 10 and ys.max() <= 53, name
    # and the classes differ from each other
    flat = cover.reshape(n, -1) > 0.5
    overlap = (flat[:, None] & flat[None]).sum(-1) / (flat[:, None] | flat[None]).sum(-1)
    assert (overlap[~np.eye(n, dtype=bool)] < 0.9).all()


def test_scenes_boxes_match_visible_masks():
    images, scenes = shapes.make_scenes(12, size=64, seed=0)
    assert images.shape == (12, 64, 64, 3)
    for sc in scenes:
        masks, boxes = sc["masks"], sc["boxes"]
        assert masks.shape[0] == boxes.shape[0] == len(sc["shape"])
        assert (masks.sum(0) <= 1).all()  # instances never overlap
        for m, (x0, y0, x1, y1) in zip(masks, boxes):
            ys, xs = np.nonzero(m)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1)


def test_generation_is_fast():
    t0 = time.process_time()  # CPU time: robust to a busy machine
    shapes.make_classification(1200, seed=9)
    assert time.process_time() - t0 < 3.0  # ~0.3 s on an idle core; 10x margin for shared CI machines


def test_upright_objects_stay_near_their_canonical_pose(monkeypatch):
    # spy on the renderer: the angles it draws the class objects with (clutter and bars pass kind -1 or circles)
    angles = []
    real = shapes._coverage

    def spy(kind, cx, cy, radius, angle, size, ss=2):
        if ss == 2 and np.all(np.asarray(kind) >= 0):
            angles.append(np.asarray(angle))
        return real(kind, cx, cy, radius, angle, size, ss)

    monkeypatch.setattr(shapes, "_coverage", spy)
    up, y_up, _ = shapes.make_classification(300, seed=2, upright=True)
    tilt = np.degrees(np.concatenate(angles))
    angles.clear()
    free, y_free, _ = shapes.make_classification(300, seed=2)
    spread = np.degrees(np.concatenate(angles))
    assert np.abs(tilt).max() <= shapes.UPRIGHT_DEGREES and np.abs(tilt).max() > shapes.UPRIGHT_DEGREES / 2
    assert spread.max() - spread.min() > 300         # the usual world: any angle
    assert np.array_equal(y_up, y_free)               # same labels, positions, colours: only the pose differs
    assert not np.array_equal(up, free)
