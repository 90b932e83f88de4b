"""Per-channel image statistics, the one number every normaliser needs (no other course_utils imports)."""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["channel_stats"]


def channel_stats(images, layout: str = "NCHW", digits: int = 4) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) of uint8 images read as values in [0, 1], rounded to ``digits``.

    ``images`` is a tensor or array, N×C×H×W (``layout="NCHW"``) or N×H×W×C (``"NHWC"``); the std is the
    population one (divide by the pixel count), in float64, one channel at a time to bound memory.
    """
    x = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
    axis = {"NCHW": 1, "NHWC": 3}[layout]
    means, stds = [], []
    for c in range(x.shape[axis]):
        v = x.select(axis, c).double().div_(255)
        means.append(round(v.mean().item(), digits))
        stds.append(round(v.std(unbiased=False).item(), digits))
    return tuple(means), tuple(stds)
