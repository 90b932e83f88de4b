"""Training: one loop for classification, segmentation and detection, and ``fit`` built on it.

    history = fit(model, train_loader, val_loader, epochs=10, lr=0.05)
    history.plot()

``train_one_epoch`` and ``evaluate`` (``loop.py``) are the readable core; ``fit`` (``fit.py``) adds the
schedule, checkpoints, early stop, EMA, DDP and the speed switches. ``TensorLoader`` (``loader.py``)
keeps a CIFAR-sized split on the device; ``BatchMap`` rebuilds each of its batches (rotations, views,
adversarial images). ``torchrun --nproc_per_node=N -m course_utils.train`` trains on several GPUs
(see ``__main__.py``).
"""
from __future__ import annotations

from .checkpoint import load_checkpoint, save_checkpoint
from .fit import fit, make_optimizer, make_schedule
from .history import History
from .loader import BatchMap, TensorLoader
from .loop import EMA, EmptyLoaderError, amp_dtype, evaluate, predict, train_one_epoch

__all__ = ["fit", "train_one_epoch", "evaluate", "predict", "History", "TensorLoader", "BatchMap", "EMA",
           "EmptyLoaderError", "amp_dtype", "make_optimizer", "make_schedule", "save_checkpoint",
           "load_checkpoint"]
