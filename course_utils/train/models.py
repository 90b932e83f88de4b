"""Small models the training engine's tests, benchmark and command line use.

``small_cnn`` is the 3-conv CNN of the benchmark: fast enough for a CPU, enough for CIFAR-shaped input.
Expects float NCHW input; any square size (global pooling at the end).
"""
from __future__ import annotations

from torch import nn

__all__ = ["small_cnn"]


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True), nn.MaxPool2d(2))


def small_cnn(num_classes: int = 10, width: int = 32, in_channels: int = 3) -> nn.Sequential:
    """conv-bn-relu-pool ×3 (width, 2·width, 4·width channels), global average pool, linear."""
    return nn.Sequential(
        _block(in_channels, width),  # (B, w, H/2, W/2)
        _block(width, 2 * width),  # (B, 2w, H/4, W/4)
        _block(2 * width, 4 * width),  # (B, 4w, H/8, W/8)
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),  # (B, 4w)
        nn.Linear(4 * width, num_classes),
    )
