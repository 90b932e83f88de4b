"""Convolutional architectures, built and measured: layer arithmetic, a small CNN, VGG from a config list.

Lessons 04-08 use it to compute what the deck states: output sizes ``(W - K + 2P) / S + 1``, receptive
fields, parameter counts per layer, FLOPs (counted by ``torch.utils.flop_counter``, 2 per
multiply-add) and activation sizes. ``vgg`` builds the VGG configurations A-E from one list; its
``features``/``avgpool``/``classifier`` layout matches torchvision's, so torchvision's weights load.
``simple_cnn`` is the course's one small CNN: conv -> ReLU -> pool stages + linear classifier (lesson 05);
with ``batch_norm=True, global_pool=True`` the conv-BN-ReLU-pool backbone of lesson 08, of
``course train --model small_cnn`` and of ``benchmarks/bench_fit.py``. ``cifar_resnet18`` is lesson 07's
full-profile recipe model (torchvision's ResNet-18 with a CIFAR stem), for ``benchmarks/bench_recipe.py``.

Layouts: every model expects float NCHW input; sizes are (H, W) in pixels; kernels are square.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

__all__ = ["conv_output_size", "receptive_field", "layer_specs", "count_params", "params_by_layer",
           "count_flops", "activation_sizes", "VGG_CONFIGS", "VGG_PAPER_PARAMS", "vgg_features", "VGG",
           "vgg", "simple_cnn", "cifar_resnet18"]

# The deck's table (Simonyan & Zisserman, 2015, Table 1). int: 3×3 conv with that many output channels;
# (c, 1): 1×1 conv (config C); "M": 2×2 max-pool, stride 2; "LRN": local response normalisation.
_S4 = [512, 512, "M", 512, 512, "M"]
VGG_CONFIGS: dict[str, list] = {
    "A": [64, "M", 128, "M", 256, 256, "M", *_S4],
    "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M", *_S4],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", *_S4],
    "C": [64, 64, "M", 128, 128, "M", 256, 256, (256, 1), "M", 512, 512, (512, 1), "M", 512, 512, (512, 1), "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
# Parameter counts as the paper rounds them (Table 2, millions), to compare with what we build.
VGG_PAPER_PARAMS = {"A": 133, "A-LRN": 133, "B": 133, "C": 134, "D": 138, "E": 144}


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output side of a convolution or pooling: floor((W - K + 2P) / S) + 1, K widened to D(K-1)+1."""
    k = dilation * (kernel - 1) + 1
    if size + 2 * padding < k:
        raise ValueError(f"kernel {k} is larger than the padded input {size + 2 * padding}: pad more or shrink the kernel")
    return (size - k + 2 * padding) // stride + 1


def receptive_field(layers: Sequence[tuple[int, int]]) -> list[int]:
    """Receptive field (input pixels per side) after each (kernel, stride) layer of a chain."""
    r, jump, out = 1, 1, []
    for k, s in layers:
        r += (k - 1) * jump  # k neighbours of the previous layer, each `jump` input pixels apart
        jump *= s
        out.append(r)
    return out


def _pair0(v) -> int:
    return v[0] if isinstance(v, tuple) else v


def layer_specs(model: nn.Module) -> list[tuple[str, int, int]]:
    """(name, kernel, stride) of each conv and pooling module, in registration order (a chain is assumed)."""
    specs = []
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k, s = _pair0(m.kernel_size), _pair0(m.stride)
            d = _pair0(getattr(m, "dilation", 1))
            specs.append((name, d * (k - 1) + 1, s))
    return specs


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (each shared tensor once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def params_by_layer(model: nn.Module) -> list[tuple[str, str, int]]:
    """(name, module type, parameter count) for each module that owns parameters directly."""
    rows = []
    for name, m in model.named_modules():
        n = sum(p.numel() for p in m.parameters(recurse=False))
        if n:
            rows.append((name, type(m).__name__, n))
    return rows


def count_flops(model: nn.Module, *inputs: torch.Tensor) -> int:
    """FLOPs of one forward pass as torch.utils.flop_counter counts them (2 per multiply-add; no bias, ReLU, pool)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(*inputs)
    return counter.get_total_flops()


def activation_sizes(model: nn.Module, x: torch.Tensor,
                     types: tuple = (nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.BatchNorm2d, nn.Linear)) -> list[tuple[str, tuple, int]]:
    """(name, output shape, numel) of each module of ``types`` during one forward pass of ``x`` (NCHW)."""
    rows, hooks = [], []
    for name, m in model.named_modules():
        if isinstance(m, types):
            hooks.append(m.register_forward_hook(
                lambda mod, inp, out, name=name: rows.append((name, tuple(out.shape), out.numel()))))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return rows


def vgg_features(config: str | Sequence, in_channels: int = 3, batch_norm: bool = False) -> nn.Sequential:
    """The convolutional part of a VGG from a config name ("A".."E", "A-LRN") or list (see VGG_CONFIGS)."""
    if isinstance(config, str):
        if config not in VGG_CONFIGS:
            raise ValueError(f"unknown VGG config {config!r}: use one of {sorted(VGG_CONFIGS)} or a list")
        config = VGG_CONFIGS[config]
    layers: list[nn.Module] = []
    c = in_channels
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        elif item == "LRN":  # the AlexNet setting the VGG paper reuses
            layers.append(nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0))
        else:
            out, k = item if isinstance(item, tuple) else (item, 3)
            layers.append(nn.Conv2d(c, out, kernel_size=k, padding=k // 2))  # "same" size: P = (K-1)/2
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            c = out
    return nn.Sequential(*layers)


def _last_channels(features: nn.Sequential) -> int:
    convs = [m for m in features if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("a VGG config needs at least one convolution")
    return convs[-1].out_channels


class VGG(nn.Module):
    """VGG: ``features`` (conv stages), ``avgpool`` (to pool_size²), ``classifier`` (FC layers). Expects NCHW."""

    def __init__(self, features: nn.Sequential, num_classes: int = 1000, hidden: int | None = 4096,
                 pool_size: int = 7, dropout: float = 0.5):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d(pool_size)  # identity for 224×224 inputs (already 7×7)
        flat = _last_channels(features) * pool_size * pool_size
        if hidden is None:  # one linear layer: the small variants of the lessons
            self.classifier = nn.Sequential(nn.Linear(flat, num_classes))
        else:  # FC-hidden, FC-hidden, FC-classes, same indices as torchvision (weights load)
            self.classifier = nn.Sequential(
                nn.Linear(flat, hidden), nn.ReLU(True), nn.Dropout(dropout),
                nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(dropout),
                nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, C, H/32, W/32) after 5 pools
        x = self.avgpool(x)  # (B, C, pool, pool)
        x = torch.flatten(x, 1)  # (B, C·pool·pool)
        return self.classifier(x)


def vgg(config: str | Sequence = "D", num_classes: int = 1000, batch_norm: bool = False, in_channels: int = 3,
        hidden: int | None = 4096, pool_size: int = 7, dropout: float = 0.5) -> VGG:
    """A VGG from a config name or list; defaults give the paper's ImageNet nets ("D" = VGG-16)."""
    return VGG(vgg_features(config, in_channels, batch_norm), num_classes, hidden, pool_size, dropout)


def simple_cnn(channels: Sequence[int] = (16, 32, 64), num_classes: int = 10, in_channels: int = 3,
               in_size: int = 32, batch_norm: bool = False, hidden: int | None = None,
               global_pool: bool = False) -> nn.Sequential:
    """Feature extractor (conv3×3 -> [BN] -> ReLU -> maxpool2, per entry of ``channels``) + linear classifier.

    The result is ``Sequential(features=..., classifier=...)``: ``model.features(x)`` gives the feature
    maps, for transfer learning. ``global_pool`` averages them to one value per channel (any input
    size) instead of flattening (needs ``in_size``); ``hidden`` adds a hidden linear layer + ReLU.
    """
    feats: list[nn.Module] = []
    c, size = in_channels, in_size
    for out in channels:
        feats += [nn.Conv2d(c, out, 3, padding=1, bias=not batch_norm)]  # BN's shift makes a bias redundant
        feats += [nn.BatchNorm2d(out)] if batch_norm else []
        feats += [nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        c, size = out, size // 2
    if global_pool:
        head: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]  # (B, C)
        flat = c
    else:
        if size < 1:
            raise ValueError(f"{len(channels)} poolings shrink a {in_size}px input to nothing: use fewer stages")
        head, flat = [nn.Flatten()], c * size * size  # (B, C·H'·W')
    if hidden:
        head += [nn.Linear(flat, hidden), nn.ReLU(inplace=True)]
        flat = hidden
    head.append(nn.Linear(flat, num_classes))
    return nn.Sequential(OrderedDict(features=nn.Sequential(*feats), classifier=nn.Sequential(*head)))


def cifar_resnet18(num_classes: int = 10) -> nn.Module:
    """torchvision's ResNet-18 with a CIFAR stem: 3×3 stride-1 conv, no max-pool (32×32 stays 32×32 in stage 1).

    The model of lesson 07's full-profile recipe (the lesson builds it in front of the learner; this copy is for
    benchmarks and scripts). 11,173,962 parameters for 10 classes.
    """
    import torchvision

    model = torchvision.models.resnet18(num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    model.maxpool = nn.Identity()
    return model
