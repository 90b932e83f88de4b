"""Self-supervised learning (lesson 13): pretext tasks, the SimCLR loss and views, and the linear probe.

* Pretext tasks make labels from the images themselves: :func:`rotation_batch` (Gidaris et al., 2018),
  :func:`grid_tiles` for relative patch position (Doersch et al., 2015) and jigsaw puzzles with a
  :func:`max_hamming_permutations` set (Noroozi & Favaro, 2016).
* Contrastive learning: :func:`nt_xent` (the SimCLR loss, Chen et al., 2020), :func:`simclr_transform`
  (the paper's augmentation pipeline, torchvision v2, one image at a time) and :func:`simclr_augment`
  (the same steps on a whole batch at once, for training).
* Evaluation: :func:`linear_probe` trains a linear classifier on frozen features
  (``course_utils.transfer.extract_features``) and returns its test accuracy; :func:`probe_logits` is
  the same probe fitted by plain full-batch gradient descent from zero, deterministic (lesson 13's
  exercise reference).
* Language: :func:`words` splits a sentence into tokens; :func:`next_token_pairs` and
  :func:`masked_lm_pairs` turn it into (input, label) pairs, as language-model pretraining does.

Images are NCHW (uint8 or float); features are float (N, D).
"""
from __future__ import annotations

import itertools
import math
import re
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["rotation_batch", "grid_tiles", "max_hamming_permutations", "nt_xent", "simclr_transform",
           "simclr_augment", "linear_probe", "probe_logits", "words", "next_token_pairs", "masked_lm_pairs", "MASK"]

MASK = "[MASK]"  # the token that hides a word in masked language modelling (BERT's spelling)


def rotation_batch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image rotated by 0, 90, 180 and 270 degrees (counter-clockwise): ``(4N, C, H, W)``, labels 0..3.

    Output order: all N images at 0°, then all at 90°, and so on; label k means k·90°. Needs square images.
    """
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"rotation_batch needs square images, got {tuple(x.shape[-2:])}")
    rotated = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])  # (4N, C, H, W)
    labels = torch.arange(4, device=x.device).repeat_interleave(len(x))      # (4N,)
    return rotated, labels


def grid_tiles(x: torch.Tensor, grid: int = 3, gap: int = 0) -> torch.Tensor:
    """Cut each image (N, C, H, W) into a grid×grid layout of square tiles, row by row: (N, grid², C, t, t).

    ``gap`` pixels are left out between neighbouring tiles (Doersch et al. and Noroozi & Favaro leave
    gaps so that a network cannot solve the task by matching edges across the border). The tiles fill
    the image from its top-left corner: t = (min(H, W) - (grid - 1)·gap) // grid.
    """
    side = min(x.shape[-2:])
    t = (side - (grid - 1) * gap) // grid
    if t < 1:
        raise ValueError(f"images of side {side} are too small for a {grid}×{grid} grid with gap {gap}")
    tiles = [x[..., r * (t + gap):r * (t + gap) + t, c * (t + gap):c * (t + gap) + t]
             for r in range(grid) for c in range(grid)]
    return torch.stack(tiles, dim=1)


def max_hamming_permutations(n: int, tiles: int = 9, seed: int = 0) -> torch.Tensor:
    """``n`` permutations of ``tiles`` items, chosen greedily to be far apart (a max-min variant of Noroozi & Favaro's).

    Start from one random permutation; then repeatedly add the permutation whose *smallest* Hamming
    distance (number of positions that differ) to the ones chosen so far is largest, ties broken at
    random. Noroozi & Favaro (2016, Algorithm 1) instead add the permutation with the largest *summed*
    distance to the chosen set; max-min bounds the closest pair directly. Returns int64 (n, tiles);
    row 0 is the random start.
    """
    every = np.array(list(itertools.permutations(range(tiles))), dtype=np.int8)  # (tiles!, tiles)
    if not 1 <= n <= len(every):
        raise ValueError(f"n must be between 1 and {len(every)}, got {n}")
    rng = np.random.default_rng(seed)
    positions = np.ascontiguousarray(every.T)  # (tiles, tiles!): summing over 9 long rows is 5x faster than over 9! short ones
    distance = lambda p: (positions != every[p][:, None]).sum(0, dtype=np.int8)  # Hamming distance of every permutation to p
    chosen = [int(rng.integers(len(every)))]
    closest = distance(chosen[0])  # distance of every permutation to the chosen set
    for _ in range(n - 1):
        best = np.flatnonzero(closest == closest.max())
        pick = int(rng.choice(best))
        chosen.append(pick)
        np.minimum(closest, distance(pick), out=closest)
    return torch.from_numpy(every[chosen].astype(np.int64))


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """SimCLR's normalised temperature-scaled cross-entropy for N positive pairs ``(z1[i], z2[i])``, each (N, D).

    The 2N embeddings are L2-normalised; each one's positive is its partner, the other 2N - 2 are its
    negatives; the loss is the mean over all 2N anchors of cross-entropy over cosine similarity / τ.
    """
    z = F.normalize(torch.cat([z1, z2]), dim=1)            # (2N, D)
    sim = z @ z.T / temperature                            # (2N, 2N)
    sim = sim.masked_fill(torch.eye(len(z), dtype=torch.bool, device=z.device), float("-inf"))  # not itself
    n = len(z1)
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(sim, partner)


def simclr_transform(size: int, strength: float = 0.5, crop_scale: tuple[float, float] = (0.08, 1.0),
                     blur: bool = False):
    """SimCLR's augmentation (Chen et al., 2020, appendix A) for uint8 (C, H, W) images, as torchvision v2.

    Random resized crop to ``size`` → horizontal flip → colour jitter (brightness, contrast, saturation
    0.8·s, hue 0.2·s, applied with p = 0.8) → grayscale (p = 0.2) → Gaussian blur (p = 0.5, ImageNet
    only: the paper leaves it out for CIFAR-10, where s = 0.5). Output stays uint8.
    """
    from torchvision.transforms import v2

    s = strength
    steps = [v2.RandomResizedCrop(size, scale=crop_scale, antialias=True), v2.RandomHorizontalFlip(),
             v2.RandomApply([v2.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)], p=0.8),
             v2.RandomGrayscale(p=0.2)]
    if blur:
        k = 2 * (size // 20) + 1  # odd kernel of about 10% of the side
        steps.append(v2.RandomApply([v2.GaussianBlur(k, sigma=(0.1, 2.0))], p=0.5))
    return v2.Compose(steps)


def simclr_augment(x: torch.Tensor, generator: torch.Generator | None = None, strength: float = 0.5,
                   crop_scale: tuple[float, float] = (0.08, 1.0), hue: float | None = None) -> torch.Tensor:
    """The steps of :func:`simclr_transform` on a whole float batch (N, 3, H, W) in [0, 1], drawn per image.

    One ``affine_grid``/``grid_sample`` does every image's random resized crop (aspect 3/4..4/3) and
    flip; then brightness, contrast, saturation (factors in 1 ± 0.8·s) and hue (± ``hue`` of the colour
    wheel, default 0.2·s, :func:`course_utils.robustness.hue_rotate`) with p = 0.8, then grayscale with
    p = 0.2. Hundreds of times faster than one torchvision call per image, which is what makes SimCLR
    fit in seconds here. Returns floats in [0, 1].
    """
    from .robustness import hue_rotate

    n, g = len(x), generator
    u = lambda *shape: torch.rand(*shape, generator=g).to(x.device)  # uniform in [0, 1)
    area = crop_scale[0] + (crop_scale[1] - crop_scale[0]) * u(n)
    log_ratio = (u(n) * 2 - 1) * math.log(4 / 3)
    w = torch.sqrt(area * log_ratio.exp()).clamp(max=1)            # crop width / image width
    h = torch.sqrt(area / log_ratio.exp()).clamp(max=1)
    flip = torch.where(u(n) < 0.5, -1.0, 1.0).to(x.device)
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)    # output grid -> input coordinates
    theta[:, 0, 0], theta[:, 1, 1] = w * flip, h
    theta[:, 0, 2], theta[:, 1, 2] = (u(n) * 2 - 1) * (1 - w), (u(n) * 2 - 1) * (1 - h)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    on = (u(n, 1, 1, 1) < 0.8).to(x.dtype)                         # colour jitter for 80% of the images
    factor = lambda amount: 1 + (u(n, 1, 1, 1) * 2 - 1) * amount * on
    x = x * factor(0.8 * strength)                                 # brightness
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = mean + (x - mean) * factor(0.8 * strength)                 # contrast
    grey = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:]).expand_as(x)
    x = grey + (x - grey) * factor(0.8 * strength)                 # saturation
    hue = 0.2 * strength if hue is None else hue                   # fraction of the colour wheel
    x = hue_rotate(x.clamp(0, 1), (u(n) * 2 - 1) * hue * 360 * on.flatten())
    grey = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:]).expand_as(x)
    return torch.where(u(n, 1, 1, 1) < 0.2, grey, x).clamp(0, 1)  # grayscale for 20% of the images


def linear_probe(f_train: torch.Tensor, y_train: torch.Tensor, f_test: torch.Tensor, y_test: torch.Tensor,
                 epochs: int = 30, lr: float = 0.1, weight_decay: float = 1e-3, batch_size: int = 128,
                 seed: int = 0) -> float:
    """Test accuracy of a linear classifier trained on frozen features (standardised with the train statistics).

    The usual way to compare representations: only a linear layer learns, with ``course_utils.train.fit``
    (SGD, cosine schedule), so the score says how linearly separable the classes are in that feature space.
    """
    from torch.utils.data import DataLoader, TensorDataset

    from .train import fit

    mu, sd = f_train.mean(0, keepdim=True), f_train.std(0, keepdim=True) + 1e-6
    f_train, f_test = (f_train - mu) / sd, (f_test - mu) / sd
    torch.manual_seed(seed)
    head = nn.Linear(f_train.shape[1], int(max(y_train.max(), y_test.max())) + 1)
    g = torch.Generator().manual_seed(seed)
    train = DataLoader(TensorDataset(f_train, y_train), batch_size=batch_size, shuffle=True, generator=g)
    test = DataLoader(TensorDataset(f_test, y_test), batch_size=1024)
    hist = fit(head, train, test, epochs=epochs, lr=lr, weight_decay=weight_decay, schedule="cosine",
               quiet=True, seed=seed, device="cpu", task="classification")
    return hist.last["val_acc"]


def probe_logits(f_train: torch.Tensor, y_train: torch.Tensor, f_test: torch.Tensor, num_classes: int,
                 steps: int = 100, lr: float = 0.5) -> torch.Tensor:
    """Test logits (M, num_classes) of a linear probe fitted by full-batch gradient descent: deterministic.

    Both feature sets are standardised with the *training* features' mean and std (``std(0) + 1e-6``);
    the weights (D, C) and bias (C,) start at zero; each of ``steps`` steps subtracts ``lr`` times the
    gradient of the mean cross-entropy on all training features. No randomness, so two correct
    implementations agree to float rounding.
    """
    mu, sd = f_train.mean(0), f_train.std(0) + 1e-6
    a, t = (f_train - mu) / sd, (f_test - mu) / sd
    w = torch.zeros(a.shape[1], num_classes, dtype=a.dtype, requires_grad=True)
    b = torch.zeros(num_classes, dtype=a.dtype, requires_grad=True)
    for _ in range(steps):
        gw, gb = torch.autograd.grad(F.cross_entropy(a @ w + b, y_train), (w, b))
        with torch.no_grad():
            w -= lr * gw
            b -= lr * gb
    return (t @ w + b).detach()


# ---- self-supervision in language: the text is its own label ------------------------------------------
def words(sentence: str) -> list[str]:
    """Lower-cased word and punctuation tokens: ``"She went out."`` -> ``["she", "went", "out", "."]``."""
    return re.findall(r"[\w']+|[^\w\s]", sentence.lower())


def next_token_pairs(tokens: Sequence[str]) -> list[tuple[list[str], str]]:
    """(every prefix, the token after it): what a language model like GPT is trained to predict."""
    return [(list(tokens[:i]), tokens[i]) for i in range(1, len(tokens))]


def masked_lm_pairs(tokens: Sequence[str], mask: str = MASK) -> list[tuple[list[str], str]]:
    """(the tokens with position i replaced by ``mask``, the token that was there), for every i (BERT-style)."""
    return [([*tokens[:i], mask, *tokens[i + 1:]], tokens[i]) for i in range(len(tokens))]
