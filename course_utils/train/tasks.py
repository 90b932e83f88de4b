"""The task-specific steps of the one training loop: classification, segmentation, detection.

A task says how a batch goes to the device, how the forward pass gives a loss, what the model's
outputs are at evaluation time (with optional flip test-time augmentation), its default loss and
metrics, and what to check on the first batch so a mismatch fails at once with a clear message.

Batch layouts: classification ``(x float N×C×H×W, y int64 N)``; segmentation ``(x, y int64 N×H×W)`` with
255 for unlabelled pixels; detection ``(images, targets)``: a list (or batch tensor) of float 0..1 C×H×W
images and a list of dicts with ``boxes`` (float xyxy, pixels) and ``labels`` (int64), as torchvision.
"""
from __future__ import annotations

from functools import partial

import torch
from torch import nn

from .. import metrics as M

__all__ = ["Task", "Classification", "Segmentation", "Detection", "get_task", "infer_task", "to_device"]


def to_device(obj, device: torch.device, channels_last: bool = False):
    """Move tensors (inside lists, tuples, dicts) to ``device``; non_blocking overlaps copies from pinned memory."""
    if isinstance(obj, torch.Tensor):
        obj = obj.to(device, non_blocking=True)
        if channels_last and obj.ndim == 4 and obj.is_floating_point():
            obj = obj.contiguous(memory_format=torch.channels_last)
        return obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(o, device, channels_last) for o in obj)
    if isinstance(obj, dict):
        return {k: to_device(v, device, channels_last) for k, v in obj.items()}
    return obj


def _first_conv(model: nn.Module) -> nn.Conv2d | None:
    return next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)


def check_images(model: nn.Module, x: torch.Tensor) -> None:
    """Catch the usual input mistakes before the forward pass turns them into an obscure error."""
    if not isinstance(x, torch.Tensor):
        return
    if not x.is_floating_point():
        raise TypeError(f"images are {x.dtype}: models want float input. Convert and normalise first, "
                        "e.g. x.float() / 255 (TensorLoader and torchvision ToTensor do this).")
    conv = _first_conv(model)
    if x.ndim == 4 and conv is not None and x.shape[1] != conv.in_channels:
        if x.shape[-1] == conv.in_channels:
            raise ValueError(f"images are {tuple(x.shape)}, channels last (N×H×W×C), but PyTorch wants "
                             "N×C×H×W: use x.permute(0, 3, 1, 2).")
        raise ValueError(f"images have {x.shape[1]} channels but the model's first conv expects "
                         f"{conv.in_channels}: check the data or the model's first layer.")
    if not torch.isfinite(x).all():
        raise ValueError("images contain NaN or inf: check the data and its normalisation.")


def check_loss(loss: torch.Tensor) -> None:
    """Return None if the scalar ``loss`` is finite; raise FloatingPointError with what to check if not."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss is {loss.item()} on the first batch: check inputs and labels, "
                                 "or lower the learning rate / switch amp off.")


def _main(out):
    """The main output: torchvision segmentation models return ``{"out": ..., "aux": ...}``."""
    return out["out"] if isinstance(out, dict) and "out" in out else out


class Task:
    """Base: classification-style ``model(x) -> output``, ``loss_fn(output, y)``."""

    name = "task"

    def train_step(self, model, x, y, loss_fn, check: bool = False):
        """Forward pass and loss; returns ``(loss, main output)``; an auxiliary output adds 0.5 × its loss."""
        if check:
            check_images(model, x)
        out, aux = self.split_output(model(x))
        if check:
            self.check_output(out, y, loss_fn)
        loss = loss_fn(out, y)
        if aux is not None:  # auxiliary head, weighted 0.5 as in torchvision's reference recipe
            loss = loss + 0.5 * loss_fn(aux, y)
        if check:
            check_loss(loss)
        return loss, out

    def split_output(self, out):
        """Returns ``(main output, auxiliary output or None)`` of a forward pass (base: the output, no aux)."""
        return out, None

    def eval_output(self, model, x, tta_flip: bool = False):
        """Model output for metrics, averaged with the horizontally flipped image's if ``tta_flip``."""
        out = _main(model(x))
        if tta_flip:
            flipped = _main(model(x.flip(-1)))
            if flipped.ndim == 4:  # a dense (per-pixel) prediction: flip it back to the image's orientation
                flipped = flipped.flip(-1)
            out = (out + flipped) / 2
        return out

    def check_output(self, out, y, loss_fn) -> None:
        """Return None if output ``out`` and targets ``y`` fit ``loss_fn``, else raise a clear error (base: none)."""

    def default_loss(self, label_smoothing: float = 0.0):
        """The loss used when ``fit`` gets none: cross-entropy on logits N×C (base and classification)."""
        return nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def default_metrics(self) -> dict:
        """{name: metric} evaluated on the validation set when ``fit`` gets none (base: none)."""
        return {}

    def __repr__(self) -> str:
        return self.name


def _check_labels(y: torch.Tensor, n_classes: int, what: str, ignore: int | None = None) -> None:
    if y.dtype != torch.int64:  # masks read from PNGs are often uint8, labels from NumPy int32
        raise TypeError(f"labels are {y.dtype}, but cross-entropy wants int64 class indices: use y.long() "
                        "(or pass a loss that takes other targets).")
    labelled = y[y != ignore] if ignore is not None else y
    if labelled.numel() == 0:
        return
    lo, hi = int(labelled.min()), int(labelled.max())
    if hi >= n_classes:
        raise ValueError(f"a label is {hi} but the model outputs {n_classes} classes ({what}): wrong number "
                         f"of classes — the last layer needs at least {hi + 1} outputs — or labels not "
                         "0-based.")
    if lo < 0:
        raise ValueError(f"a label is {lo}: labels must be class indices in 0..{n_classes - 1}.")


class Classification(Task):
    """Images N×C×H×W -> logits N×classes, labels int64 N, cross-entropy, top-1 accuracy."""

    name = "classification"

    def check_output(self, out, y, loss_fn) -> None:
        """Return None if ``out`` is logits N×classes matching labels ``y`` (N,) in 0..classes-1; raise if not."""
        if out.ndim != 2:
            raise ValueError(f"model output is {tuple(out.shape)}, expected logits N×classes: "
                             "flatten before the last Linear layer.")
        if len(out) != len(y):
            raise ValueError(f"{len(out)} outputs but {len(y)} labels in the batch: check the loader.")
        if isinstance(loss_fn, nn.CrossEntropyLoss) and y.ndim == 1:
            _check_labels(y, out.shape[1], "logits N×C")

    def default_metrics(self) -> dict:
        """{"acc": top-1 accuracy} of logits N×classes against labels N."""
        return {"acc": partial(M.accuracy, topk=1)}


class Segmentation(Task):
    """Per-pixel cross-entropy; torchvision models return ``{"out": ..., "aux": ...}``."""

    name = "segmentation"
    ignore_index = 255

    def split_output(self, out):
        """Returns ``(logits N×C×H×W, aux logits N×C×H×W or None)`` from a tensor or ``{"out", "aux"}``."""
        return _main(out), (out.get("aux") if isinstance(out, dict) else None)

    def check_output(self, out, y, loss_fn) -> None:
        """Return None if logits N×C×H×W and masks int64 N×H×W (255 = unlabelled) fit together; raise if not."""
        if out.ndim != 4 or y.ndim != 3 or out.shape[-2:] != y.shape[-2:]:
            raise ValueError(f"segmentation wants logits N×C×H×W and masks N×H×W of the same size, got "
                             f"{tuple(out.shape)} and {tuple(y.shape)}: upsample the logits or resize the masks.")
        if isinstance(loss_fn, nn.CrossEntropyLoss):
            _check_labels(y, out.shape[1], "logits N×C×H×W", ignore=self.ignore_index)

    def default_loss(self, label_smoothing: float = 0.0):
        """Per-pixel cross-entropy on logits N×C×H×W against masks N×H×W, skipping pixels labelled 255."""
        return nn.CrossEntropyLoss(ignore_index=self.ignore_index, label_smoothing=label_smoothing)

    def default_metrics(self) -> dict:
        """{"miou": mean IoU over classes, "pixel_acc": fraction of labelled pixels right}, 255 ignored."""
        return {"miou": M.MeanIoU(ignore_index=self.ignore_index),
                "pixel_acc": partial(M.pixel_accuracy, ignore_index=self.ignore_index)}


class Detection(Task):
    """torchvision detection models: ``model(images, targets)`` returns a dict of losses in train mode."""

    name = "detection"

    def train_step(self, model, x, y, loss_fn, check: bool = False):
        """Returns ``(sum of the model's loss dict, None)`` for images (list of C×H×W) and target dicts."""
        if check:
            self.check_targets(model, x, y)
        losses = model(list(x), list(y))  # {"loss_classifier": ..., "loss_box_reg": ..., ...}
        loss = sum(losses.values())
        if check:
            check_loss(loss)
        return loss, None

    def eval_output(self, model, x, tta_flip: bool = False):
        """Returns one dict per image: ``boxes`` float K×4 (xyxy, pixels), ``labels`` int64 K, ``scores`` K."""
        if tta_flip:
            raise ValueError("tta_flip is not supported for detection: flipped boxes need merging (NMS).")
        return model(list(x))  # list of {"boxes", "labels", "scores"}

    def check_targets(self, model, images, targets) -> None:
        """Return None if images are float 0..1 and targets are dicts of xyxy ``boxes`` and in-range ``labels``."""
        for img in images:
            if not img.is_floating_point():
                raise TypeError(f"detection images are {img.dtype}: torchvision detectors want float 0..1 "
                                "(they normalise themselves), e.g. img.float() / 255.")
        n_classes = _detection_classes(model)
        for t in targets:
            if not isinstance(t, dict) or "boxes" not in t or "labels" not in t:
                raise ValueError("detection targets must be dicts with 'boxes' (xyxy) and 'labels', one per image.")
            if t["labels"].numel():
                _check_labels(t["labels"], n_classes or 1 << 30, "incl. background 0")

    def default_loss(self, label_smoothing: float = 0.0):
        """None: torchvision detectors compute their own losses in train mode."""
        return None

    def default_metrics(self) -> dict:
        """{"map50": mean average precision at IoU 0.5 (the VOC metric)} over the detections' dicts."""
        return {"map50": M.DetectionAP(0.5)}


def _detection_classes(model: nn.Module) -> int | None:
    """Number of classes (background included) of common torchvision detectors, if found."""
    head = getattr(getattr(model, "roi_heads", None), "box_predictor", None)
    if head is not None and hasattr(head, "cls_score"):
        return head.cls_score.out_features
    head = getattr(getattr(model, "head", None), "classification_head", None)
    return getattr(head, "num_classes", None)


TASKS = {t.name: t for t in (Classification(), Segmentation(), Detection())}


def get_task(task) -> Task:
    """The :class:`Task` for a name ("classification", "segmentation", "detection") or a Task itself."""
    if isinstance(task, Task):
        return task
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}: use one of {', '.join(TASKS)}")
    return TASKS[task]


def infer_task(model: nn.Module, batch) -> Task:
    """Detection (torchvision detector, dict targets), segmentation (N×H×W targets), else classification."""
    if type(getattr(model, "transform", None)).__name__ == "GeneralizedRCNNTransform":
        return TASKS["detection"]
    y = batch[1] if isinstance(batch, (list, tuple)) and len(batch) > 1 else None
    if isinstance(y, (list, tuple)) and y and isinstance(y[0], dict):
        return TASKS["detection"]
    if isinstance(y, torch.Tensor) and y.ndim == 3 and not y.is_floating_point():
        return TASKS["segmentation"]
    return TASKS["classification"]
