"""Captions for shapes scenes ("a small red triangle left of a blue circle"), for CLIP-style lessons.

Every caption is built from the scene's ground truth: size (from the visible box), colour name,
shape name, and the spatial relation between two objects' box centres. Each image gets every true
phrasing (both orders of a pair), like COCO's several captions per image.
"""
from __future__ import annotations

import numpy as np

from .shapes import COLOURS, SHAPES

__all__ = ["describe", "relation", "scene_captions"]

_COLOUR_NAMES = tuple(COLOURS)


def describe(shape: int, colour: int, box, image_size: int) -> str:
    """'a small red triangle': size is 'small' if the visible box side is under a fifth of the image."""
    side = max(box[2] - box[0], box[3] - box[1])
    size = "small" if side < image_size / 5 else "large"
    return f"a {size} {_COLOUR_NAMES[colour]} {SHAPES[shape]}"


def relation(box_a, box_b) -> str:
    """Where box a is relative to box b, by centres: 'left of', 'right of', 'above' or 'below' (image y down)."""
    dx = (box_a[0] + box_a[2] - box_b[0] - box_b[2]) / 2
    dy = (box_a[1] + box_a[3] - box_b[1] - box_b[3]) / 2
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"


def scene_captions(scene, image_size: int) -> list[str]:
    """All captions of one scene: one object -> one caption; two or more -> the first pair, both ways."""
    parts = [describe(int(s), int(c), b, image_size) for s, c, b in zip(scene["shape"], scene["colour"],
                                                                         np.asarray(scene["boxes"]))]
    if not parts:
        return ["an empty textured background"]
    if len(parts) == 1:
        return [parts[0]]
    a, b = scene["boxes"][0], scene["boxes"][1]
    return [f"{parts[0]} {relation(a, b)} {parts[1]}", f"{parts[1]} {relation(b, a)} {parts[0]}"]
