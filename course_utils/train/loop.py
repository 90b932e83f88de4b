"""The training loop itself: ``train_one_epoch``, ``evaluate``, ``predict``, plus mixed precision and EMA.

Read ``train_one_epoch`` top to bottom: it is the loop a learner writes by hand in lesson 02, with the
speed switches an expert adds (autocast, a gradient scaler for fp16, ``zero_grad(set_to_none=True)``,
non-blocking copies) and a check of the first batch. The task object (``tasks.py``) holds the few lines
that differ between classification, segmentation and detection.
"""
from __future__ import annotations

import copy
import math
import time
from contextlib import nullcontext

import torch
from torch import nn
from tqdm.auto import tqdm

from .tasks import Task, get_task, infer_task, to_device

__all__ = ["train_one_epoch", "evaluate", "predict", "amp_dtype", "autocast", "EMA", "EmptyLoaderError"]


class EmptyLoaderError(ValueError):
    """The loader yielded no batch."""


def amp_dtype(device: torch.device | str, amp=None) -> torch.dtype | None:
    """Mixed-precision dtype: None/"auto" = bf16 on CUDA GPUs of compute capability >= 8.0 (Ampere on),
    fp16 (with a gradient scaler, see ``fit``) on older ones, off elsewhere.

    Why the capability and not ``torch.cuda.is_bf16_supported()``: that answers True on a T4 (7.5, Colab's
    free GPU) because bf16 is *emulated* there, in kernels slower than fp16's tensor cores.
    ``amp=True`` also switches it on for the CPU (bf16); ``"bf16"``/``"fp16"`` force a dtype; False = off.
    """
    device = torch.device(device)
    if amp is False:
        return None
    if amp in ("bf16", torch.bfloat16):
        return torch.bfloat16
    if amp in ("fp16", torch.float16):
        return torch.float16
    if amp not in (None, True, "auto"):
        raise ValueError(f"amp={amp!r}: use None (auto), True, False, 'bf16' or 'fp16'")
    if device.type == "cuda":
        major, _ = torch.cuda.get_device_capability(device if device.index is not None else None)
        return torch.bfloat16 if major >= 8 else torch.float16
    return torch.bfloat16 if amp is True else None


def autocast(device: torch.device | str, dtype: torch.dtype | None):
    """``torch.autocast`` for ``dtype``, or a do-nothing context when mixed precision is off."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


class EMA:
    """Exponential moving average of a model's weights: ``ema = decay * ema + (1 - decay) * weights``."""

    def __init__(self, model: nn.Module, decay: float = 0.999):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for e, w in zip(self.model.state_dict().values(), model.state_dict().values()):
            if e.is_floating_point():
                e.lerp_(w, 1 - self.decay)
            else:  # integer buffers such as BatchNorm's num_batches_tracked
                e.copy_(w)


class _Running:
    """Sums of loss and metrics over an epoch, kept on the device so nothing waits for the GPU."""

    def __init__(self, metrics: dict | None):
        self.metrics = metrics or {}
        for m in self.metrics.values():
            if hasattr(m, "reset"):
                m.reset()
        self.sums: dict[str, torch.Tensor | float] = {}
        self.updated: set[str] = set()  # metric objects that saw a batch (a detector's train step has no outputs)
        self.n = 0

    def add(self, name: str, value, n: int) -> None:
        value = value.detach().float() if isinstance(value, torch.Tensor) else float(value)
        self.sums[name] = self.sums.get(name, 0.0) + value * n

    def update(self, loss, out, y, n: int) -> None:
        if loss is not None:
            self.add("loss", loss, n)
        if out is not None:
            for name, m in self.metrics.items():
                if hasattr(m, "update"):
                    m.update(out, y)
                    self.updated.add(name)
                else:
                    self.add(name, m(out, y), n)
        self.n += n

    def compute(self) -> dict[str, float]:
        res = {k: float(v) / self.n for k, v in self.sums.items()}
        res.update({k: float(m.compute()) for k, m in self.metrics.items() if k in self.updated})
        return res


def train_one_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, loss_fn, device,
                    *, scheduler=None, task: str | Task | None = None, amp: torch.dtype | None = None,
                    scaler: torch.amp.GradScaler | None = None, ema: EMA | None = None, metrics: dict | None = None,
                    channels_last: bool = False, quiet: bool = False, desc: str = "train") -> dict:
    """One pass over ``loader``: forward, loss, backward, step per batch; returns mean loss, metrics, counts."""
    device = torch.device(device)
    model.train()
    running = _Running(metrics)
    start = time.perf_counter()
    bar = tqdm(loader, desc=desc, disable=quiet, leave=False, dynamic_ncols=True)
    for step, batch in enumerate(bar):
        x, y = to_device(batch, device, channels_last)  # non_blocking copies
        if task is None or isinstance(task, str):
            task = get_task(task) if task else infer_task(model, batch)
        with autocast(device, amp):
            loss, out = task.train_step(model, x, y, loss_fn, check=step == 0)  # step 0: clear errors early
        optimizer.zero_grad(set_to_none=True)  # frees the gradients instead of writing zeros
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:  # fp16: scale the loss so small gradients do not underflow, unscale before the step
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        if scheduler is not None:
            scheduler.step()
        if ema is not None:
            ema.update(model)
        running.update(loss, out, y, len(x))
        if step % 20 == 0:  # .item() waits for the GPU, so only now and then
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(f"loss became {value} at step {step}: the learning rate is probably "
                                         "too high (or fp16 overflowed: try amp='bf16' or amp=False).")
            bar.set_postfix(loss=f"{value:.3f}")
    if running.n == 0:
        raise EmptyLoaderError("the training loader yielded no batches: the dataset is empty, or smaller than "
                               "batch_size with drop_last=True.")
    return {**running.compute(), "images": running.n, "seconds": time.perf_counter() - start}


@torch.no_grad()
def evaluate(model: nn.Module, loader, metrics: dict | None = None, device=None, *, loss_fn=None,
             task: str | Task | None = None, amp: torch.dtype | None = None, tta_flip: bool = False,
             channels_last: bool = False, quiet: bool = True) -> dict:
    """Mean loss (if ``loss_fn``) and metrics of ``model`` over ``loader``, in eval mode, without gradients."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    running = _Running(metrics)
    for batch in tqdm(loader, desc="eval", disable=quiet, leave=False, dynamic_ncols=True):
        x, y = to_device(batch, device, channels_last)
        if task is None or isinstance(task, str):
            task = get_task(task) if task else infer_task(model, batch)
        with autocast(device, amp):
            out = task.eval_output(model, x, tta_flip)
            loss = loss_fn(out, y) if loss_fn is not None else None
        if isinstance(out, torch.Tensor):
            out = out.float()
        running.update(loss, out, y, len(x))
    if running.n == 0:
        raise EmptyLoaderError("the evaluation loader yielded no batches: is the validation split empty?")
    return running.compute()


@torch.no_grad()
def predict(model: nn.Module, data, device=None, *, task: str | Task | None = None, tta_flip: bool = False,
            batch_size: int = 256):
    """Model outputs for ``data`` (a tensor of images, or a loader of ``x`` or ``(x, y)``), concatenated on the CPU.

    Classification/segmentation give logits (N, C[, H, W]); detection a list of dicts.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    if isinstance(data, torch.Tensor):
        data = data.split(batch_size)
    outs = []
    for batch in data:
        x = to_device(_inputs(batch), device)
        t = get_task(task) if task else infer_task(model, (x, None))
        out = t.eval_output(model, x, tta_flip)
        if isinstance(out, list):  # detection: one dict per image
            outs.extend(to_device(out, torch.device("cpu")))
        else:
            outs.append(out.float().cpu())
    return outs if outs and isinstance(outs[0], dict) else torch.cat(outs)


def _inputs(batch):
    """The images of a batch: ``x`` itself, or the first item of ``(x, y)`` / ``(images, targets)``."""
    if isinstance(batch, (list, tuple)) and len(batch) == 2:
        x, y = batch
        if (isinstance(x, torch.Tensor) and x.ndim == 4) or (isinstance(y, (list, tuple)) and y
                                                             and isinstance(y[0], dict)):
            return x
    return batch
