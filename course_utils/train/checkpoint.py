"""Save and restore everything a run needs to continue exactly where it stopped.

A checkpoint is one ``torch.save`` dict: model, optimizer, scheduler, gradient scaler and EMA state, the
last finished epoch (0-based), the History so far, the run's config, and the random number generators
(Python, NumPy, torch CPU and CUDA), so that resuming gives the same weights as never stopping.
Files: ``last.pt`` after every epoch, ``best.pt`` when the watched metric improves.
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["save_checkpoint", "load_checkpoint", "rng_state", "set_rng_state", "unwrap"]


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DistributedDataParallel and/or torch.compile wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):  # torch.compile
            model = model._orig_mod
        elif isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, *, model, optimizer=None, scheduler=None, scaler=None, ema=None,
                    epoch: int = -1, history=None, config: dict | None = None) -> Path:
    """Write the run's state to ``path`` atomically (a crash mid-write keeps the previous file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "ema": ema.model.state_dict() if ema is not None else None,
        "epoch": epoch,
        "history": history.state_dict() if history is not None else None,
        "config": config or {},
        "rng": rng_state(),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path, *, model, optimizer=None, scheduler=None, scaler=None, ema=None,
                    restore_rng: bool = True, map_location="cpu") -> dict:
    """Load ``path`` into the given objects (those that are not None); returns the checkpoint dict."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: train first, or pass resume=False")
    # weights_only=False: the file also holds the RNG states and the config, and is one we wrote
    state = torch.load(path, map_location=map_location, weights_only=False)
    unwrap(model).load_state_dict(state["model"])
    for obj, key in ((optimizer, "optimizer"), (scheduler, "scheduler"), (scaler, "scaler")):
        if obj is not None and state.get(key) is not None:
            obj.load_state_dict(state[key])
    if ema is not None and state.get("ema") is not None:
        ema.model.load_state_dict(state["ema"])
    if restore_rng:
        set_rng_state(state["rng"])
    return state
