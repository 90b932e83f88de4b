"""``fit``: the training loop of the lessons after 02 in one call, built from ``train_one_epoch`` and ``evaluate``.

It decides everything once at the top (task, loss, metrics, device, precision, optimizer, schedule,
DDP, compile), then runs ``for epoch: train_one_epoch -> evaluate -> record -> checkpoint``. Each speed
switch is a keyword: ``amp``, ``channels_last``, ``compile``; each training trick too: ``label_smoothing``,
``ema``, ``tta_flip``. Ctrl-C stops cleanly and returns the History so far. In a notebook the loss and
metric curves are drawn live (``live``, :mod:`course_utils.train.live`).
"""
from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from ..config import pick_device, seed_everything
from ..host import keep_freed_memory
from . import ddp
from .checkpoint import load_checkpoint, save_checkpoint
from .history import History, environment
from .live import LiveCurves, in_notebook, live_default
from .loader import TensorLoader
from .loop import EMA, EmptyLoaderError, amp_dtype, evaluate, train_one_epoch
from .tasks import Task, get_task, infer_task

__all__ = ["fit", "make_optimizer", "make_schedule"]


def make_optimizer(optimizer, model: nn.Module, lr: float, weight_decay: float | None = None):
    """"sgd" (momentum 0.9, Nesterov), "adamw", or an optimizer you built; no weight decay on biases and norms."""
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]  # conv and linear weights
    no_decay = [p for p in params if p.ndim < 2]  # biases and norm scales: decaying them only hurts
    if optimizer == "sgd":
        wd = 5e-4 if weight_decay is None else weight_decay
        groups = [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    if optimizer == "adamw":
        wd = 0.05 if weight_decay is None else weight_decay
        groups = [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=lr)
    raise ValueError(f"optimizer={optimizer!r}: use 'sgd', 'adamw' or a torch.optim.Optimizer")


def make_schedule(schedule, optimizer, lr: float, total_steps: int):
    """Learning-rate schedule stepped after every batch: "onecycle", "cosine", "constant", or ``f(opt, steps)``."""
    if callable(schedule):
        return schedule(optimizer, total_steps)
    if schedule == "onecycle" and total_steps >= 3:  # warm up for 25% of the steps to ``lr``, then anneal to ~0
        pct = min(0.5, max(0.25, 2 / total_steps))  # at least two warm-up steps, or OneCycleLR divides by 0
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps, pct_start=pct)
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if schedule in ("constant", None, "onecycle"):  # onecycle needs 3 steps or more
        return None
    raise ValueError(f"schedule={schedule!r}: use 'onecycle', 'cosine', 'constant' or a function (opt, steps)")


def _infer_task(model: nn.Module, train) -> Task:
    """Guess the task from the model and one training target, without running the loader's workers."""
    if isinstance(train, TensorLoader):
        return infer_task(model, (None, train.labels[:1]))
    dataset = getattr(train, "dataset", None)
    if dataset is not None and len(dataset) > 0:
        y = dataset[0][1]
        y = [y] if isinstance(y, dict) else torch.as_tensor(y).unsqueeze(0)
        return infer_task(model, (None, y))
    return infer_task(model, next(iter(train), (None, None)))


def _length(train) -> int:
    try:
        n = len(train)
    except TypeError:
        raise TypeError("fit needs len(train) to plan the schedule: pass a DataLoader or TensorLoader") from None
    if n == 0:
        raise EmptyLoaderError("the training loader has no batches: the dataset is empty, or smaller than "
                               "batch_size with drop_last=True.")
    return n


def _set_epoch(loader, epoch: int) -> None:
    """Same data order for epoch ``epoch`` whether resumed or not (and a fresh shuffle per epoch under DDP)."""
    target = loader if hasattr(loader, "set_epoch") else getattr(loader, "sampler", None)
    if hasattr(target, "set_epoch"):
        target.set_epoch(epoch)


def fit(model: nn.Module, train, val=None, *, epochs: int, lr: float, optimizer="sgd",
        weight_decay: float | None = None, schedule="onecycle", loss=None, metrics: dict | None = None,
        task: str | None = None, device=None, amp=None, channels_last: bool = False, compile=False,
        label_smoothing: float = 0.0, ema: float | None = None, tta_flip: bool = False,
        checkpoint_dir: str | Path | None = None, resume: bool = False, best_metric: str | None = None,
        early_stop: int | None = None, quiet: bool = False, live: bool | None = None, seed: int | None = None,
        config=None) -> History:
    """Train ``model`` on ``train`` for ``epochs``, evaluating on ``val`` after each epoch; returns a History.

    ``train``/``val``: DataLoader or TensorLoader of ``(x, y)``. ``amp``: None = auto (bf16/fp16 on GPU, off on
    CPU), True, False, "bf16", "fp16". ``compile``: True or a dict of ``torch.compile`` options.
    ``ema``: decay (e.g. 0.999) — evaluation uses the averaged weights, which the model gets at the end.
    ``best_metric``: e.g. "val_acc" (max) or "val_loss" (min), saved as ``best.pt``; ``early_stop``: patience
    in epochs. ``config``: extra entries (e.g. ``cfg.as_dict()``) stored in the History and checkpoints.
    ``quiet``: no progress bar and no per-epoch text. ``live``: curves in one notebook display, redrawn as
    epochs end; None = on in a notebook unless ``quiet`` ($COURSE_LIVE=0/1 overrides), off in scripts.
    ``checkpoint_dir`` + ``resume=True``: continue from ``last.pt`` there (``cfg.run_dir`` picks the folder).
    """
    keep_freed_memory()  # as setup() does: activations reuse freed memory instead of page-faulting (glibc)
    if seed is not None:
        seed_everything(seed)
    config = config.as_dict() if hasattr(config, "as_dict") else config  # a course_utils.Config is fine too
    device = torch.device(device or pick_device())
    task = get_task(task) if task else _infer_task(model, train)
    if loss is not None and label_smoothing:
        raise ValueError("label_smoothing applies to the default loss: build your loss with it instead")
    loss_fn = loss if loss is not None else task.default_loss(label_smoothing)
    metrics = task.default_metrics() if metrics is None else dict(metrics)
    dtype = amp_dtype(device, amp)

    raw = model.to(device)
    if channels_last:  # NHWC in memory: faster convolutions on tensor cores
        raw = raw.to(memory_format=torch.channels_last)
    model = raw
    if ddp.is_distributed():
        model = ddp.wrap(model, device)
        train = ddp.shard(train)
    if compile:
        model = torch.compile(model, **(compile if isinstance(compile, dict) else {}))
    steps = _length(train)
    opt = make_optimizer(optimizer, raw, lr, weight_decay)
    sched = make_schedule(schedule, opt, lr, epochs * steps)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    averaged = EMA(raw, ema) if ema else None
    eval_model = averaged.model if averaged else (raw if ddp.is_distributed() else model)

    watch = best_metric or (("val_loss" if val is not None else "train_loss") if early_stop else None)
    sign = -1 if watch and "loss" in watch else 1  # losses go down, other metrics up
    cfg = {"epochs": epochs, "lr": lr, "optimizer": optimizer if isinstance(optimizer, str) else type(opt).__name__,
           "weight_decay": weight_decay, "schedule": schedule if isinstance(schedule, str) else "custom",
           "loss": repr(loss_fn), "metrics": list(metrics), "task": task.name, "amp": str(dtype),
           "channels_last": channels_last, "compile": bool(compile), "label_smoothing": label_smoothing,
           "ema": ema, "tta_flip": tta_flip, "best_metric": watch, "early_stop": early_stop, "seed": seed,
           "batch_size": getattr(train, "batch_size", None), "world_size": ddp.world_size(), **(config or {})}
    history = History(config=cfg, env=environment(device))
    state = dict(model=raw, optimizer=opt, scheduler=sched, scaler=scaler, ema=averaged)
    ckpt = Path(checkpoint_dir) if checkpoint_dir else None
    start = 0
    if resume and ckpt and (ckpt / "last.pt").exists():
        saved = load_checkpoint(ckpt / "last.pt", **state, map_location=device)
        start = saved["epoch"] + 1
        history = History.from_state_dict(saved["history"])
        history.interrupted = False
    show = not quiet and ddp.is_main()
    want_live = live_default(quiet) if live is None else live
    curves = LiveCurves() if want_live and in_notebook() and ddp.is_main() else None  # nowhere to draw in a script
    if curves is not None and history.rows:  # resumed: show what was already trained
        curves.update(history, final=True)
    best = history.best["value"] * sign if history.best else -math.inf
    stale, t_start, epoch = 0, time.perf_counter() - history.seconds, start

    try:
        for epoch in range(start, epochs):
            _set_epoch(train, epoch)
            tr = train_one_epoch(model, train, opt, loss_fn, device, scheduler=sched, task=task, amp=dtype,
                                 scaler=scaler, ema=averaged, metrics=copy.deepcopy(metrics),
                                 channels_last=channels_last, quiet=not show, desc=f"epoch {epoch + 1}/{epochs}")
            images, seconds = tr.pop("images") * ddp.world_size(), tr.pop("seconds")
            row = {"epoch": epoch + 1, **{f"train_{k}": ddp.mean(v, device) for k, v in tr.items()}}
            if val is not None:
                ev = evaluate(eval_model, val, metrics, device, loss_fn=loss_fn, task=task, amp=dtype,
                              tta_flip=tta_flip, channels_last=channels_last)
                row.update({f"val_{k}": v for k, v in ev.items()})
            row.update(lr=opt.param_groups[0]["lr"], seconds=seconds, images_per_s=images / seconds)
            history.append(row)
            history.seconds = time.perf_counter() - t_start
            improved = watch is not None and row.get(watch, math.nan) * sign > best
            if improved:
                best, stale = row[watch] * sign, 0
                history.best = {"metric": watch, "value": row[watch], "epoch": epoch + 1}
            else:
                stale += 1
            if curves is not None:
                curves.update(history)
            if show:
                tqdm.write("  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                     for k, v in row.items()))
            if ckpt and ddp.is_main():
                save_checkpoint(ckpt / "last.pt", **state, epoch=epoch, history=history, config=cfg)
                if improved:
                    save_checkpoint(ckpt / "best.pt", **state, epoch=epoch, history=history, config=cfg)
            if early_stop and stale >= early_stop:
                if show:
                    tqdm.write(f"early stop: {watch} has not improved for {early_stop} epochs")
                break
    except KeyboardInterrupt:
        history.interrupted = True
        if ddp.is_main():
            where = f"; last checkpoint kept at {ckpt / 'last.pt'}" if ckpt else ""
            print(f"interrupted during epoch {epoch + 1}: returning the History of {len(history)} "
                  f"finished epochs{where}")
    if curves is not None:
        curves.update(history, final=True)
    if averaged is not None:  # the averaged weights are the ones we evaluated: keep them
        raw.load_state_dict(averaged.model.state_dict())
    history.seconds = time.perf_counter() - t_start
    return history
