"""Distributed data parallel, for when one GPU is not enough: the same ``fit``, one process per GPU.

``torchrun --nproc_per_node=N -m course_utils.train ...`` starts N processes; each calls ``init()``
(reading RANK/WORLD_SIZE/LOCAL_RANK from the environment) and then ``fit``, which notices
``torch.distributed`` is initialised: it wraps the model in ``DistributedDataParallel`` (gradients are
averaged across processes after each backward, so every rank takes the same step) and gives each rank
its own share of the training data. Only rank 0 prints and writes checkpoints. Validation runs in full
on every rank: simpler, every rank gets the same numbers, and validation sets here are small.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

__all__ = ["init", "is_distributed", "rank", "world_size", "is_main", "wrap", "shard", "mean", "in_sync", "cleanup"]


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True on rank 0 (or when not distributed): the process that prints and saves."""
    return rank() == 0


def init(backend: str | None = None) -> str:
    """Join the process group torchrun set up; returns this process's device ("cuda:LOCAL_RANK" or "cpu")."""
    local = int(os.environ.get("LOCAL_RANK", 0))
    cuda = torch.cuda.is_available()
    if "WORLD_SIZE" in os.environ and not is_distributed():
        dist.init_process_group(backend or ("nccl" if cuda else "gloo"))
    if cuda:
        torch.cuda.set_device(local)
        return f"cuda:{local}"
    return "cpu"


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel around ``model`` (already on ``device``)."""
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def shard(loader):
    """Each rank's share of the data: a TensorLoader shards itself; a DataLoader gets a DistributedSampler."""
    if not isinstance(loader, DataLoader) or isinstance(loader.sampler, DistributedSampler):
        return loader
    if loader.batch_sampler is not None and not hasattr(loader.batch_sampler, "batch_size"):
        raise ValueError("cannot shard a DataLoader with a custom batch_sampler: give it a DistributedSampler")
    sampler = DistributedSampler(loader.dataset, shuffle=isinstance(loader.sampler, RandomSampler),
                                 drop_last=loader.drop_last)
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler,
                      num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                      pin_memory=loader.pin_memory, drop_last=loader.drop_last,
                      persistent_workers=loader.persistent_workers)


def mean(value: float, device: torch.device) -> float:
    """Average a number over ranks (e.g. the training loss, which each rank computed on its share)."""
    if not is_distributed():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t) / world_size()


def cleanup() -> None:
    if is_distributed():
        dist.destroy_process_group()


@torch.no_grad()
def in_sync(model: nn.Module) -> bool:
    """True when every rank holds exactly the same parameters (compares elementwise max and min over ranks)."""
    flat = torch.cat([p.detach().reshape(-1).double() for p in model.parameters()])
    if not is_distributed():
        return True
    hi, lo = flat.clone(), flat.clone()
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    return bool(torch.equal(hi, lo))
