"""DarkNet-53, YOLOv3's backbone, built row by row from the table in Redmon & Farhadi (2018), Table 1.

    model = darknet53()                         # ImageNet classifier: 52 conv layers + 1 connected layer
    with torch.device("meta"):                  # shapes and parameter counts without allocating weights
        model = darknet53()

The table, read top to bottom: a 3×3 conv with 32 filters; then five stages, each a 3×3 stride-2 conv
that doubles the filters and halves the resolution, followed by ``n`` residual units of
(1×1 conv to half the filters, 3×3 conv back, + input); then global average pooling and a connected
layer to 1000 classes. Each "Convolutional" row is conv (no bias) + BatchNorm + LeakyReLU(0.1), as in
the darknet configuration file (the table itself does not show the normalisation or the activation).
Layout: NCHW; with a 256×256 input the stages output 128, 64, 32, 16 and 8 pixels, as in the table.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

__all__ = ["DARKNET53_STAGES", "conv_bn_leaky", "DarkResidual", "darknet53", "count_layers"]

# (filters of the stage's stride-2 conv, residual units) for the five stages of the table: 1x, 2x, 8x, 8x, 4x
DARKNET53_STAGES: tuple[tuple[int, int], ...] = ((64, 1), (128, 2), (256, 8), (512, 8), (1024, 4))


def conv_bn_leaky(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """One "Convolutional" row of the table: conv (same padding, no bias) + BatchNorm + LeakyReLU(0.1)."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out), nn.LeakyReLU(0.1, inplace=True))


class DarkResidual(nn.Module):
    """One residual unit: x + conv3×3(conv1×1(x)), the 1×1 conv halving the channels. Expects NCHW."""

    def __init__(self, channels: int):
        super().__init__()
        self.reduce = conv_bn_leaky(channels, channels // 2, 1)
        self.expand = conv_bn_leaky(channels // 2, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.expand(self.reduce(x))


def darknet53(num_classes: int = 1000, stages=DARKNET53_STAGES) -> nn.Sequential:
    """DarkNet-53 as ``Sequential(stem, stage1..stage5, head)``; ``head`` is avgpool + connected layer."""
    layers: dict[str, nn.Module] = {"stem": conv_bn_leaky(3, 32, 3)}
    c = 32
    for i, (filters, units) in enumerate(stages, 1):
        stage = [conv_bn_leaky(c, filters, 3, stride=2)] + [DarkResidual(filters) for _ in range(units)]
        layers[f"stage{i}"] = nn.Sequential(*stage)
        c = filters
    layers["head"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))
    return nn.Sequential(OrderedDict(layers))


def count_layers(model: nn.Module) -> dict[str, int]:
    """Weight layers by kind: ``{"conv": ..., "linear": ...}`` (BatchNorm and activations not counted)."""
    return {"conv": sum(isinstance(m, nn.Conv2d) for m in model.modules()),
            "linear": sum(isinstance(m, nn.Linear) for m in model.modules())}
