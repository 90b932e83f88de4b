"""Captions say what the scene holds: hand-checked descriptions and relations."""
from __future__ import annotations

import numpy as np

from course_utils.data import captions, shapes


def test_describe_and_relation_by_hand():
    red, blue = list(shapes.COLOURS).index("red"), list(shapes.COLOURS).index("blue")
    tri, circ = shapes.SHAPES.index("triangle"), shapes.SHAPES.index("circle")
    assert captions.describe(tri, red, (0, 0, 10, 8), 64) == "a small red triangle"
    assert captions.describe(circ, blue, (0, 0, 30, 8), 64) == "a large blue circle"
    left, right, top = (0, 20, 10, 30), (40, 22, 50, 32), (20, 0, 30, 5)
    assert captions.relation(left, right) == "left of" and captions.relation(right, left) == "right of"
    assert captions.relation(top, left) == "above" and captions.relation(left, top) == "below"
    scene = {"shape": np.array([tri, circ]), "colour": np.array([red, blue]),
             "boxes": np.array([left, right], dtype=np.float32)}
    assert captions.scene_captions(scene, 64) == ["a small red triangle left of a small blue circle",
                                                  "a small blue circle right of a small red triangle"]


def test_captions_match_generated_scenes():
    images, scenes = shapes.make_scenes(20, 64, 3, max_objects=2, min_pixels=20)
    for sc in scenes:
        caps = captions.scene_captions(sc, 64)
        assert len(caps) == min(2, max(1, len(sc["shape"])))
        for s, c in zip(sc["shape"], sc["colour"]):
            assert f"{list(shapes.COLOURS)[c]} {shapes.SHAPES[s]}" in caps[0]
