"""Semantic segmentation models: encoders that return a feature pyramid, FCN heads with skips, a small U-Net.

    enc = SmallEncoder(width=8)                      # 5 stages: features at strides 2, 4, 8, 16, 32
    fcn8 = FCN(enc, num_classes=11, skips=2)         # FCN-32s (skips=0), FCN-16s (1), FCN-8s (2)
    unet = UNet(num_classes=11, width=8, depth=4)    # concatenated skips, 2x2 stride-2 up-convolutions

Every model takes float NCHW images whose height and width are multiples of 32 (of 2**depth for the
U-Net) and returns per-pixel class scores (N, C, H, W) at the input's size, what
``course_utils.train.fit``'s segmentation task and ``course_utils.metrics.MeanIoU`` expect.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["conv_bn_relu", "SmallEncoder", "ResNetEncoder", "bilinear_kernel", "fuse_skips", "FCN", "UNet",
           "mask_tensors"]


def conv_bn_relu(c_in: int, c_out: int, n: int = 1) -> nn.Sequential:
    """``n`` x (3x3 conv, padding 1 - BatchNorm - ReLU): same height and width out."""
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                   nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class SmallEncoder(nn.Module):
    """A VGG-style encoder for small images: 5 stages of conv-BN-ReLU then 2x2 max-pool.

    ``forward`` returns the 5 pooled feature maps, at strides 2, 4, 8, 16 and 32; ``channels`` lists their
    channel counts (``width`` doubling per stage, capped at 4 x width).
    """

    def __init__(self, width: int = 8, in_channels: int = 3, stages: int = 5):
        super().__init__()
        self.channels = tuple(width * min(2 ** i, 4) for i in range(stages))
        c_in, blocks = in_channels, []
        for c in self.channels:
            blocks.append(nn.Sequential(conv_bn_relu(c_in, c), nn.MaxPool2d(2)))
            c_in = c
        self.stages = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)                    # (N, c, H / 2**k, W / 2**k)
            feats.append(x)
        return feats


class ResNetEncoder(nn.Module):
    """A torchvision ResNet's stages as an encoder: features of layer1..layer4 (strides 4, 8, 16, 32)."""

    def __init__(self, resnet: nn.Module):
        super().__init__()
        self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)  # stride 4
        self.stages = nn.ModuleList([resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4])
        last = lambda layer: layer[-1].conv3 if hasattr(layer[-1], "conv3") else layer[-1].conv2  # bottleneck or basic
        self.channels = tuple(last(layer).out_channels for layer in self.stages)  # (64, 128, 256, 512) for resnet18

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


def bilinear_kernel(channels: int, k: int) -> torch.Tensor:
    """Weights (channels, channels, k, k) making ``ConvTranspose2d(k, stride=k // 2)`` upsample each channel
    bilinearly on its own (how Long et al. initialise their learned upsampling)."""
    factor = (k + 1) // 2
    centre = factor - 1 if k % 2 == 1 else factor - 0.5
    r = torch.arange(k, dtype=torch.float32)
    f = 1 - (r - centre).abs() / factor                     # (k,) a tent
    w = torch.zeros(channels, channels, k, k)
    w[range(channels), range(channels)] = f[:, None] * f[None, :]
    return w


def fuse_skips(features: Sequence[torch.Tensor], score: Sequence[nn.Module], up: Sequence[nn.Module]) -> torch.Tensor:
    """FCN's skip fusion: class scores at the finest stride the skips reach (H/32, H/16 or H/8), NCHW.

    ``features`` are the encoder's (stride 8, stride 16, stride 32) maps; ``score`` the 1x1 convs for the
    stride-32, 16, 8 features (``len(up) + 1`` of them are used); ``up`` the learned x2 upsamplings. Each
    step upsamples the scores so far x2 and adds the 1x1 scores of the next finer features.
    """
    f8, f16, f32 = features
    s = score[0](f32)                                         # (N, C, H/32, W/32)
    for step, score_finer, finer in zip(up, score[1:], (f16, f8)):
        s = step(s) + score_finer(finer)                      # (N, C, H/16, W/16), then H/8
    return s


class FCN(nn.Module):
    """Long et al.'s fully convolutional network on an encoder: FCN-32s (``skips=0``), -16s (1), -8s (2).

    A 1x1 conv scores the stride-32 features into C classes. Each skip upsamples the scores x2 with a
    learned transposed conv (k=4, stride 2, initialised bilinear) and adds the 1x1 scores of the encoder's
    stride-16 (then stride-8) features. A fixed bilinear upsampling brings the result to the image size.
    """

    def __init__(self, encoder: nn.Module, num_classes: int, skips: int = 0):
        super().__init__()
        if skips not in (0, 1, 2):
            raise ValueError(f"skips={skips}: use 0 (FCN-32s), 1 (FCN-16s) or 2 (FCN-8s)")
        self.encoder, self.skips = encoder, skips
        c8, c16, c32 = encoder.channels[-3:]
        self.score = nn.ModuleList([nn.Conv2d(c, num_classes, 1) for c in (c32, c16, c8)[:skips + 1]])
        self.up = nn.ModuleList([nn.ConvTranspose2d(num_classes, num_classes, 4, 2, 1, bias=False)
                                 for _ in range(skips)])
        for up in self.up:
            with torch.no_grad():
                up.weight.copy_(bilinear_kernel(num_classes, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = fuse_skips(self.encoder(x)[-3:], self.score, self.up)  # (N, C, H/32, W/32), /16 or /8
        return F.interpolate(s, size=x.shape[-2:], mode="bilinear", align_corners=False)  # (N, C, H, W)


class UNet(nn.Module):
    """Ronneberger et al.'s U-Net with padded convs: an encoder of ``depth`` poolings, a symmetric decoder.

    Each decoder level upsamples with a 2x2 stride-2 transposed conv that halves the channels,
    **concatenates** the encoder's features of the same size, and applies two 3x3 convs; a 1x1 conv
    scores the last level into C classes.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 16, depth: int = 4):
        super().__init__()
        chans = [width * 2 ** i for i in range(depth + 1)]   # e.g. 16, 32, 64, 128, 256
        self.down = nn.ModuleList([conv_bn_relu(c_in, c, 2) for c_in, c in zip([in_channels, *chans], chans[:-1])])
        self.bottom = conv_bn_relu(chans[-2], chans[-1], 2)
        self.up = nn.ModuleList([nn.ConvTranspose2d(c, c // 2, 2, stride=2) for c in reversed(chans[1:])])
        self.dec = nn.ModuleList([conv_bn_relu(c, c // 2, 2) for c in reversed(chans[1:])])
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)                                   # (N, c, h, w) kept for the decoder
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = up(x)                                         # (N, c/2, 2h, 2w)
            x = dec(torch.cat([skip, x], 1))                  # concatenate, then (N, c/2, 2h, 2w)
        return self.head(x)                                   # (N, C, H, W)


def mask_tensors(dataset, size: int, indices: Iterable[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images (N, 3, size, size), int64 masks (N, size, size)) from a dataset of (Image, Mask) pairs;
    each pair squashed to size x size (images bilinear, masks nearest: class indices stay class indices)."""
    from torchvision.transforms import v2

    resize = v2.Resize((size, size), antialias=True)
    order = list(range(len(dataset)) if indices is None else indices)
    images = torch.empty((len(order), 3, size, size), dtype=torch.uint8)  # filled in place: no list of copies
    masks = torch.empty((len(order), size, size), dtype=torch.int64)     # beside it (memory: Binder's 2 GiB)
    for k, i in enumerate(order):
        image, mask = resize(*dataset[i])
        images[k] = image.as_subclass(torch.Tensor)[:3]
        masks[k] = mask.as_subclass(torch.Tensor).reshape(size, size)
    return images, masks
