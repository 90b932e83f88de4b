"""A loader for datasets that fit in memory (CIFAR-sized): the whole split lives as one uint8 tensor.

``TensorLoader`` keeps images as uint8 N×3×H×W (NCHW) on the device (the GPU when there is one), picks
each batch with one index operation, augments the batch on the device (random crop with zero padding,
horizontal flip — the usual CIFAR recipe) and only then converts to normalised float. No worker
processes, no per-image Python: on a GPU this removes the data bottleneck of a ``DataLoader``.

Order and augmentation come from a generator seeded with ``seed + epoch``, so epoch ``e`` is the same
batches whether you ran epochs 0..e in one go or resumed (``fit`` calls ``set_epoch`` like
``DistributedSampler``). Under ``torch.distributed`` each rank takes every world_size-th sample.
"""
from __future__ import annotations

import math
from typing import Iterator, Sequence

import torch

__all__ = ["TensorLoader"]


class TensorLoader:
    """Batches ``(x float N×3×H×W normalised, y int64 N)`` on ``device`` from uint8 images held in memory."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool = True,
                 augment: bool = False, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 device: str | torch.device = "cpu", drop_last: bool = False, seed: int | None = None,
                 pad: int = 4):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"TensorLoader wants uint8 images N×C×H×W, got {images.dtype} {tuple(images.shape)}")
        if images.shape[1] not in (1, 3) and images.shape[-1] in (1, 3):
            raise ValueError(f"images look channels-last {tuple(images.shape)}: "
                             "use images.permute(0, 3, 1, 2) to get N×C×H×W")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = torch.as_tensor(labels).to(self.device)
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.drop_last, self.pad = drop_last, pad
        c = images.shape[1]
        mean = torch.tensor(mean if mean is not None else [0.0] * c, dtype=torch.float32)
        std = torch.tensor(std if std is not None else [1.0] * c, dtype=torch.float32)
        # x_float = (x_uint8 / 255 - mean) / std, done as one multiply-add
        self.scale = (1 / (255 * std)).view(1, c, 1, 1).to(self.device)
        self.shift = (mean / std).view(1, c, 1, 1).to(self.device)
        # without a seed, draw one from torch's global RNG so torch.manual_seed still controls it
        self.seed = int(torch.randint(2 ** 62, ())) if seed is None else seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass use epoch ``epoch``'s order and augmentation (as DistributedSampler)."""
        self.epoch = epoch

    def _shard(self) -> tuple[int, int]:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def _n(self) -> int:
        rank, world = self._shard()
        return len(self.images) // world  # equal share per rank, or DDP ranks would wait forever

    def __len__(self) -> int:
        n = self._n()
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        g = torch.Generator(device=self.device)
        g.manual_seed(self.seed + self.epoch)
        self.epoch += 1
        n_all = len(self.images)
        order = (torch.randperm(n_all, generator=g, device=self.device) if self.shuffle
                 else torch.arange(n_all, device=self.device))
        rank, world = self._shard()
        order = order[rank::world][: self._n()]
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.images[idx]  # (B, C, H, W) uint8
            if self.augment:
                x = self._augment(x, g)
            x = x.float().mul_(self.scale).sub_(self.shift)
            yield x, self.labels[idx]

    def _augment(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Random crop of the zero-padded batch (one offset per image) and a random horizontal flip."""
        b, c, h, w = x.shape
        p = self.pad
        if p:
            padded = torch.nn.functional.pad(x, (p, p, p, p))  # (B, C, H+2p, W+2p), zeros like RandomCrop
            dy = torch.randint(0, 2 * p + 1, (b, 1), generator=g, device=x.device)
            dx = torch.randint(0, 2 * p + 1, (b, 1), generator=g, device=x.device)
            rows = dy + torch.arange(h, device=x.device)  # (B, H)
            cols = dx + torch.arange(w, device=x.device)  # (B, W)
            bi = torch.arange(b, device=x.device).view(b, 1, 1)
            x = padded.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
            x = x.permute(0, 3, 1, 2)  # (B, C, H, W), channels-last in memory
        flip = torch.rand(b, generator=g, device=x.device) < 0.5
        return torch.where(flip.view(b, 1, 1, 1), x.flip(3), x).contiguous()

    def __repr__(self) -> str:
        return (f"TensorLoader({len(self.images)} images {tuple(self.images.shape[1:])} on {self.device}, "
                f"batch_size={self.batch_size}, {len(self)} batches, augment={self.augment})")
