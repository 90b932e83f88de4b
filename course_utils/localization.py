"""Object localization (one object per image): box helpers, a two-head network, its loss and its task for ``fit``.

    net = LocalizationNet(backbone_body(load_backbone("resnet18")), 512, num_classes=37)
    y = pack_targets(labels, boxes_xyxy, size)                # (N, 5): class, then cx, cy, w, h in [0, 1]
    fit(net, TensorLoader(images, y, 32), epochs=5, lr=0.01, task=Localization(lam=1.0))

Layouts: images NCHW; boxes are ``xyxy`` pixels (x0, y0, x1, y1), max exclusive, as the VOC reader gives
them, unless a name says ``cxcywh`` (centre, width, height) — torchvision's ``box_convert`` names. The
network outputs one tensor (N, C + 4): C class scores, then the box as ``cxcywh`` fractions of the image
side (a sigmoid keeps them in [0, 1]). Targets travel as one float tensor (N, 5) so the whole split fits
a ``TensorLoader``: the class index, then the true box in the same ``cxcywh`` fractions.
"""
from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import box_convert, box_iou

from .train.tasks import Task

__all__ = ["box_from_mask", "paired_iou", "pack_targets", "unpack_targets", "split_output", "backbone_body",
           "BoxHead", "LocalizationNet", "multitask_loss", "Localization", "box_tensors"]


def box_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """The tightest xyxy box (float (4,), pixel edges, max exclusive) around the True pixels of an (H, W) mask."""
    ys, xs = torch.nonzero(torch.as_tensor(mask), as_tuple=True)
    if len(xs) == 0:
        raise ValueError("the mask is empty: there is no object to put a box around")
    return torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float()


def paired_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of box ``a[i]`` with box ``b[i]`` (both (N, 4) xyxy): the diagonal of ``box_iou(a, b)`` in O(N)."""
    lt = torch.maximum(a[:, :2], b[:, :2])  # (N, 2) top-left of the intersection
    rb = torch.minimum(a[:, 2:], b[:, 2:])  # (N, 2) bottom-right
    inter = (rb - lt).clamp(min=0).prod(1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])
    return inter / (area(a) + area(b) - inter)


def pack_targets(labels: torch.Tensor, boxes: torch.Tensor, size: int | float) -> torch.Tensor:
    """(N,) class indices and (N, 4) xyxy pixel boxes of a ``size``-pixel square image -> float (N, 5) targets."""
    cxcywh = box_convert(boxes.float(), "xyxy", "cxcywh") / size
    return torch.cat([labels.float().view(-1, 1), cxcywh], 1)


def unpack_targets(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 5) targets -> (labels int64 (N,), boxes cxcywh fractions (N, 4))."""
    return y[:, 0].long(), y[:, 1:]


def split_output(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C + 4) network output -> (class scores (N, C), boxes cxcywh fractions (N, 4))."""
    return out[:, :-4], out[:, -4:]


def backbone_body(model: nn.Module) -> nn.Sequential:
    """A classifier's layers up to its global pooling: the feature extractor (NCHW in, NCHW feature map out).

    Works for models with a ``features`` part (the course's ``arch.simple_cnn``, torchvision's VGG) and for
    torchvision's ResNets (their children up to the ``AdaptiveAvgPool2d``).
    """
    if isinstance(getattr(model, "features", None), nn.Module):
        return nn.Sequential(*model.features.children())
    layers = []
    for child in model.children():
        if isinstance(child, nn.AdaptiveAvgPool2d):
            return nn.Sequential(*layers)
        layers.append(child)
    raise ValueError(f"{type(model).__name__} has no AdaptiveAvgPool2d child: pass a classifier whose body ends "
                     "in global average pooling (a ResNet) or has a `features` part (arch.simple_cnn), or build the body yourself.")


class BoxHead(nn.Sequential):
    """Feature map (N, channels, h, w), any h and w -> box (N, 4): ``cxcywh`` fractions of the image side.

    Pool to ``grid`` x ``grid`` positions, a 1x1 conv to ``hidden`` channels and ReLU, flatten (channel-major,
    ``nn.Flatten``), a linear layer to 4 numbers, a sigmoid. The reference for lesson 09's box-head exercise.
    """

    def __init__(self, channels: int, grid: int = 4, hidden: int = 16):
        super().__init__(
            nn.AdaptiveAvgPool2d(grid),                  # (N, channels, grid, grid) whatever the image size
            nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
            nn.Flatten(),                                # (N, hidden * grid * grid)
            nn.Linear(hidden * grid * grid, 4),
            nn.Sigmoid(),                                # cx, cy, w, h in [0, 1]
        )


class LocalizationNet(nn.Module):
    """Backbone body -> (classification head, box-regression head); returns (N, C + 4) as described above.

    The class head pools globally (what the object is does not depend on where it is). The box head
    (:class:`BoxHead`) keeps the layout: a 1x1 conv shrinks the channels, then a linear layer sees every
    position of the ``grid`` x ``grid`` map (pooled to that size first), so it can tell where the object is.
    """

    def __init__(self, body: nn.Module, channels: int, num_classes: int, grid: int = 4, hidden: int = 16):
        super().__init__()
        self.body = body
        self.cls_head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))
        self.box_head = BoxHead(channels, grid, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.body(x)                                 # (N, channels, h, w)
        scores = self.cls_head(f)                        # (N, C)
        box = self.box_head(f)                           # (N, 4) cx, cy, w, h in [0, 1]
        return torch.cat([scores, box], 1)


def multitask_loss(scores: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, true_boxes: torch.Tensor,
                   lam: float = 1.0) -> torch.Tensor:
    """CE(scores, labels) + lam * L_loc, with L_loc the L1 distance between boxes, summed over the 4
    numbers of a box and averaged over the batch (the reference for the lesson's exercise)."""
    return F.cross_entropy(scores, labels) + lam * (boxes - true_boxes).abs().sum(1).mean()


def _box_iou_metric(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    pred, true = split_output(out.float())[1], unpack_targets(y.float())[1]
    return paired_iou(box_convert(pred, "cxcywh", "xyxy"), box_convert(true, "cxcywh", "xyxy")).mean()


def _class_accuracy(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (split_output(out)[0].argmax(1) == unpack_targets(y)[0]).float().mean()


class Localization(Task):
    """``fit``'s task for LocalizationNet: loss ``loss_fn(scores, boxes, labels, true_boxes, lam)`` (CE + lam * L1),
    metrics ``acc`` (class) and ``iou`` (mean IoU of predicted and true boxes)."""

    name = "localization"

    def __init__(self, lam: float = 1.0, loss_fn=multitask_loss):
        self.lam, self.loss_fn = lam, loss_fn

    def check_output(self, out, y, loss_fn) -> None:
        """Fail early when the network's output or the targets do not have the layout above."""
        if out.ndim != 2 or out.shape[1] < 5 or y.ndim != 2 or y.shape[1] != 5 or len(out) != len(y):
            raise ValueError(f"localization wants outputs (N, C + 4) and targets (N, 5), got {tuple(out.shape)} "
                             f"and {tuple(y.shape)}: use LocalizationNet and pack_targets.")

    def default_loss(self, label_smoothing: float = 0.0):
        """The multi-task loss on (output, packed targets), with this task's lam."""
        fn, lam = self.loss_fn, self.lam

        def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            scores, boxes = split_output(out)
            labels, true_boxes = unpack_targets(y)
            return fn(scores, boxes, labels, true_boxes, lam)
        return loss

    def default_metrics(self) -> dict:
        """Class accuracy and mean box IoU."""
        return {"acc": _class_accuracy, "iou": _box_iou_metric}


def box_tensors(dataset, size: int, indices: Iterable[int] | None = None):
    """(uint8 images (N, 3, size, size), labels int64 (N,), boxes xyxy float (N, 4)) from a dataset of
    ``(Image, {"boxes": (1, 4) xyxy, "labels": (1,)})``, each image squashed to size x size, its box with it."""
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    resize = v2.Resize((size, size), antialias=True)
    images, labels, boxes = [], [], []
    for i in range(len(dataset)) if indices is None else indices:
        image, target = dataset[i]
        if not isinstance(target.get("boxes"), tv_tensors.BoundingBoxes):
            raise TypeError("box_tensors wants targets {'boxes': BoundingBoxes, 'labels': ...} "
                            "(e.g. get_dataset('pets_box', ...))")
        image, target = resize(image, target)
        images.append(image.as_subclass(torch.Tensor)[:3])
        labels.append(int(target["labels"][0]))
        boxes.append(target["boxes"].as_subclass(torch.Tensor)[0].float())
    return torch.stack(images), torch.tensor(labels, dtype=torch.int64), torch.stack(boxes)
