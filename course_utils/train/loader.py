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
from typing import Callable, Iterator, Sequence

import torch

__all__ = ["TensorLoader", "BatchMap"]


class TensorLoader:
    """Batches ``(x float N×3×H×W normalised, y int64 N)`` on ``device`` from uint8 images held in memory."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool = True,
                 augment: bool = False, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 device: str | torch.device = "cpu", drop_last: bool = False, seed: int | None = None,
                 pad: int = 4):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"TensorLoader wants uint8 images N×C×H×W, got {images.dtype} "
                             f"{tuple(images.shape)}")
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
        # zero-pad once, so that each batch's crop and flip are one gather (1.56× the memory for 32×32)
        self.padded = torch.nn.functional.pad(self.images, (pad,) * 4) if augment else None
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
            x = self._augmented(idx, g) if self.augment else self.images[idx]  # (B, C, H, W) uint8
            x = x.float().mul_(self.scale).sub_(self.shift)
            yield x, self.labels[idx]

    def _augmented(self, idx: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Images ``idx``, each randomly cropped from its padded copy and flipped with probability 1/2.

        One advanced-indexing gather does all three: row indices pick the crop's rows, column indices
        the crop's columns, read right to left for the images to flip.
        """
        b, (c, h, w), p = len(idx), self.images.shape[1:], self.pad
        dev = idx.device
        dy = torch.randint(0, 2 * p + 1, (b, 1), generator=g, device=dev)  # crop offsets in the padded image
        dx = torch.randint(0, 2 * p + 1, (b, 1), generator=g, device=dev)
        flip = torch.rand(b, 1, generator=g, device=dev) < 0.5
        cols = torch.arange(w, device=dev).expand(b, w)  # (B, W)
        cols = dx + torch.where(flip, w - 1 - cols, cols)
        rows = dy + torch.arange(h, device=dev)  # (B, H)
        ch = torch.arange(c, device=dev)
        return self.padded[idx.view(b, 1, 1, 1), ch.view(1, c, 1, 1), rows.view(b, 1, h, 1), cols.view(b, 1, 1, w)]

    def __repr__(self) -> str:
        return (f"TensorLoader({len(self.images)} images {tuple(self.images.shape[1:])} on {self.device}, "
                f"batch_size={self.batch_size}, {len(self)} batches, augment={self.augment})")


class BatchMap:
    """A loader whose batches ``(x, y)`` become ``fn(x, y) -> (x', y')``: built-per-batch training data.

    Examples: every image rotated four ways with rotation labels (a pretext task), adversarial images
    made against the model being trained, two augmented views per image. Keeps ``len``, ``batch_size``
    and ``set_epoch`` of the wrapped loader, so ``fit`` plans and seeds it like the original.
    """

    def __init__(self, loader, fn: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]):
        self.loader, self.fn = loader, fn
        self.batch_size = getattr(loader, "batch_size", None)

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.loader, "set_epoch"):
            self.loader.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self.loader:
            yield self.fn(x, y)

    def __repr__(self) -> str:
        return f"BatchMap({self.loader!r}, {getattr(self.fn, '__name__', 'fn')})"
