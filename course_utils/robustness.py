"""Adversarial examples and distribution shift (lesson 12): attacks, accuracy under attack, shifted images.

Attacks work in pixel space: images are float (N, C, H, W) in [0, 1] and the model takes them as they
are (wrap a classifier that expects normalised inputs in :class:`Normalize`), so ε is in the same units
(8/255 is the usual CIFAR-10 budget). Shifts and corruptions take and return uint8 NCHW images, like
the data layer's :class:`~course_utils.data.ImageSet`.

* :func:`fgsm` (Goodfellow et al., 2015) and :func:`pgd` (Madry et al., 2018): reference attacks.
* :func:`adversarial_step`: one step of FGSM adversarial training (the reference for lesson 12's exercise).
* :func:`accuracy_under`: accuracy of a model on clean or attacked images, batch by batch.
* :func:`hue_rotate`, :func:`corrupt`: shifted test sets in the spirit of CIFAR-10-C (Hendrycks &
  Dietterich, 2019), computed on the fly from the clean images (nothing to download).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Normalize", "fgsm", "pgd", "adversarial_step", "accuracy_under", "hue_rotate", "random_hue", "corrupt",
           "CORRUPTIONS"]


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, as the first layer of a model that takes images in [0, 1] (NCHW)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _input_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """d(mean cross-entropy)/dx, without touching the model's parameter gradients."""
    x = x.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y)
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, targeted: bool = False) -> torch.Tensor:
    """Fast gradient sign method: one step of size ``eps`` along sign(∇x loss), clipped to [0, 1].

    Untargeted (``y`` = true labels): the step increases the loss. Targeted (``y`` = wanted labels): it
    decreases the loss of the target class. The model's train/eval mode is left as the caller set it.
    """
    step = eps * _input_grad(model, x, y).sign()
    return (x - step if targeted else x + step).clamp(0, 1).detach()


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, alpha: float | None = None,
        steps: int = 10, random_start: bool = True, targeted: bool = False,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """Projected gradient descent: ``steps`` FGSM steps of size ``alpha`` (default 2.5·eps/steps), each
    followed by projection onto the L∞ ball of radius ``eps`` around ``x`` and onto [0, 1].

    ``random_start``: begin at a uniform random point of the ball (Madry et al.); ``generator`` seeds it.
    """
    alpha = 2.5 * eps / steps if alpha is None else alpha
    x_adv = x.detach().clone()
    if random_start:
        where = generator.device if generator is not None else x.device  # a CPU generator can seed GPU work
        noise = torch.rand(x.shape, generator=generator, device=where, dtype=x.dtype).to(x.device) * 2 - 1
        x_adv = (x_adv + eps * noise).clamp(0, 1)
    for _ in range(steps):
        g = _input_grad(model, x_adv, y).sign()
        x_adv = x_adv - alpha * g if targeted else x_adv + alpha * g
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)  # back into the ball and the image range
    return x_adv.detach()


def adversarial_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                     eps: float) -> float:
    """One step of adversarial training: FGSM images against the model as it is now, then one optimizer
    step on their mean cross-entropy (adversarial images only, as Madry et al.); returns that loss."""
    x_adv = fgsm(model, x, y, eps)              # leaves the parameters' .grad alone
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x_adv), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def accuracy_under(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Callable | None = None,
                   batch_size: int = 500, **kwargs) -> float:
    """Accuracy of ``model`` (eval mode) on ``x`` in [0, 1], or on ``attack(model, xb, yb, **kwargs)`` per batch."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        if attack is not None:
            xb = attack(model, xb, yb, **kwargs)
        with torch.no_grad():
            correct += int((model(xb).argmax(1) == yb).sum())
    model.train(was_training)
    return correct / len(x)


# ---- distribution shift: shifted copies of clean images ---------------------------------------------
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def hue_rotate(x: torch.Tensor, degrees: float | torch.Tensor) -> torch.Tensor:
    """Rotate the hue of float images (N, 3, H, W) in [0, 1] by ``degrees`` (a number or one per image).

    Rotation of the chroma plane (I, Q) of the YIQ colour space: brightness (Y) is kept, colours turn
    around the colour wheel (red -> green -> blue for +120° steps, roughly); grey stays grey.
    """
    theta = torch.as_tensor(degrees, dtype=x.dtype, device=x.device).reshape(-1) * (math.pi / 180)
    theta = theta.expand(len(x)) if theta.numel() == 1 else theta
    c, s = torch.cos(theta), torch.sin(theta)
    rot = torch.zeros(len(x), 3, 3, dtype=x.dtype, device=x.device)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, -s, s, c
    to_yiq = _RGB_TO_YIQ.to(x.device, x.dtype)
    m = torch.linalg.inv(to_yiq) @ rot @ to_yiq  # (N, 3, 3): RGB -> YIQ -> rotate -> RGB
    return torch.einsum("nij,njhw->nihw", m, x).clamp(0, 1)


def random_hue(x: torch.Tensor, generator: torch.Generator | None = None, max_degrees: float = 180.0) -> torch.Tensor:
    """Augmentation: each image's hue rotated by a random angle in ±``max_degrees`` (float images in [0, 1])."""
    angles = (torch.rand(len(x), generator=generator) * 2 - 1) * max_degrees
    return hue_rotate(x, angles.to(x.device))


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    from torchvision.transforms.v2 import functional as TF

    k = 2 * math.ceil(2 * sigma) + 1
    return TF.gaussian_blur(x, [k, k], [sigma, sigma])


CORRUPTIONS = ("gaussian_noise", "blur", "contrast", "brightness", "hue")
_SEVERITY = {  # parameter per severity 1..5 (images in [0, 1])
    "gaussian_noise": (0.04, 0.06, 0.08, 0.10, 0.13),  # noise std
    "blur": (0.5, 0.75, 1.0, 1.25, 1.5),                 # Gaussian sigma in pixels
    "contrast": (0.75, 0.6, 0.45, 0.3, 0.2),             # share of the contrast kept
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),             # added to every pixel
    "hue": (30, 60, 90, 135, 180),                       # hue rotation in degrees
}


def corrupt(images: torch.Tensor, kind: str, severity: int = 3, seed: int = 0) -> torch.Tensor:
    """A corrupted copy of uint8 NCHW ``images``: one of :data:`CORRUPTIONS` at ``severity`` 1..5 (seeded)."""
    if kind not in _SEVERITY:
        raise ValueError(f"unknown corruption {kind!r}: use one of {', '.join(CORRUPTIONS)}")
    if not 1 <= severity <= 5:
        raise ValueError(f"severity must be 1..5, got {severity}")
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"corrupt wants uint8 images N×C×H×W, got {images.dtype} {tuple(images.shape)}")
    p = _SEVERITY[kind][severity - 1]
    x = images.float() / 255
    if kind == "gaussian_noise":
        g = torch.Generator().manual_seed(seed)
        x = x + p * torch.randn(x.shape, generator=g)
    elif kind == "blur":
        x = _blur(x, p)
    elif kind == "contrast":
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = mean + p * (x - mean)
    elif kind == "brightness":
        x = x + p
    else:
        x = hue_rotate(x, p)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)
