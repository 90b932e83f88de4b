"""A small anchor-free one-stage detector: CenterNet's centre heatmap (Zhou et al., "Objects as Points", 2019)
with FCOS's box head (Tian et al., 2019: distances to the four sides; CenterNet regresses width and height).

An object is the centre of its box. On a grid ``stride`` times coarser than the image the network predicts

* a centre heatmap (1 channel), trained with the penalty-reduced focal loss of CornerNet/CenterNet against a
  Gaussian bump around each object's centre;
* class scores (C channels), trained with cross-entropy at the centre cells only;
* box sides (4 channels): the log distances from the cell's centre to the box's left, top, right and bottom
  edges (in grid cells), trained with an L1 loss at the centre cells only.

Decoding keeps the local maxima of the heatmap (a 3×3 max-pool plays the role of NMS) and reports each peak
once per class with score = centre score × class probability, as torchvision's detectors report a box per class.

:class:`TinyCenterNet` follows torchvision's detection protocol, so ``course_utils.train.fit`` trains it:
``model(images, targets)`` returns a dict of losses in train mode, ``model(images)`` a list of
``{"boxes", "labels", "scores"}`` in eval mode. Images are float in [0, 1] (a N×3×H×W tensor or a list of
3×H×W tensors of one size); boxes xyxy in pixels; labels 1..C (0 is background and never predicted).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["center_heatmap", "centernet_loss", "decode_centers", "TinyCenterNet"]


def center_heatmap(targets: Sequence[dict], grid: tuple[int, int],
                   stride: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Targets on a ``grid`` (H, W): ``(heat (B, H, W), image index (K,), centre cell (K, 2) as row, col)``.

    ``heat`` is 1 at each object's centre cell and falls off as a Gaussian whose sigma is a sixth of the
    box's shorter side (at least half a cell); where bumps overlap, the larger value wins.
    """
    h, w = grid
    image = torch.cat([torch.full((len(t["boxes"]),), b, dtype=torch.int64) for b, t in enumerate(targets)])
    boxes = torch.cat([t["boxes"].float().reshape(-1, 4) for t in targets]).cpu() / stride  # (K, 4) in cells
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2  # (K, 2) x, y
    sigma = ((boxes[:, 2:] - boxes[:, :2]).min(dim=1).values / 6).clamp(min=0.5)  # (K,)
    ys, xs = torch.arange(h) + 0.5, torch.arange(w) + 0.5
    gx = torch.exp(-(xs[None] - centre[:, :1]) ** 2 / (2 * sigma[:, None] ** 2))  # (K, W)
    gy = torch.exp(-(ys[None] - centre[:, 1:]) ** 2 / (2 * sigma[:, None] ** 2))  # (K, H)
    heat = torch.zeros(len(targets), h, w)
    for k in range(len(boxes)):  # a handful of objects per image: a loop is clearer than a scatter-max
        heat[image[k]] = torch.maximum(heat[image[k]], gy[k, :, None] * gx[k, None, :])
    cell = torch.stack([centre[:, 1].long().clamp(0, h - 1), centre[:, 0].long().clamp(0, w - 1)], dim=1)
    heat[image, cell[:, 0], cell[:, 1]] = 1.0
    return heat, image, cell


def centernet_loss(heat_logits: torch.Tensor, cls_logits: torch.Tensor, box_pred: torch.Tensor,
                   targets: Sequence[dict], stride: int) -> dict[str, torch.Tensor]:
    """The three losses, each divided by the number of objects: ``{"loss_heat", "loss_cls", "loss_box"}``.

    ``heat_logits`` (B, 1, H, W), ``cls_logits`` (B, C, H, W), ``box_pred`` (B, 4, H, W) log distances.
    """
    dev = heat_logits.device
    # float32 even under mixed precision: in bf16, 1 - 1e-4 rounds to 1 and log(1 - p) would be -inf
    heat_logits, cls_logits, box_pred = heat_logits.float(), cls_logits.float(), box_pred.float()
    heat, image, cell = center_heatmap(targets, heat_logits.shape[-2:], stride)
    heat, image, cell = heat.to(dev), image.to(dev), cell.to(dev)
    n = max(len(image), 1)
    p = heat_logits[:, 0].sigmoid().clamp(1e-4, 1 - 1e-4)  # (B, H, W)
    pos = heat == 1
    # focal loss: confident right answers count little; near a centre, negatives are forgiven by (1 - heat)^4
    loss_heat = -((1 - p) ** 2 * p.log())[pos].sum() - ((1 - heat) ** 4 * p ** 2 * (1 - p).log())[~pos].sum()
    labels = torch.cat([t["labels"] for t in targets]).to(dev) - 1  # class channels 0..C-1
    rows, cols = cell[:, 0], cell[:, 1]
    loss_cls = F.cross_entropy(cls_logits[image, :, rows, cols], labels, reduction="sum")  # (K, C) vs (K,)
    boxes = torch.cat([t["boxes"].float().reshape(-1, 4) for t in targets]).to(dev) / stride
    centre = cell.flip(1).float() + 0.5  # (K, 2) x, y of the cell centre
    sides = torch.cat([centre - boxes[:, :2], boxes[:, 2:] - centre], dim=1).clamp(min=0.1)  # (K, 4) l, t, r, b
    loss_box = F.l1_loss(box_pred[image, :, rows, cols], sides.log(), reduction="sum")
    return {"loss_heat": loss_heat / n, "loss_cls": loss_cls / n, "loss_box": loss_box / n}


@torch.no_grad()
def decode_centers(heat_logits: torch.Tensor, cls_logits: torch.Tensor, box_pred: torch.Tensor, stride: int,
                   image_size: tuple[int, int], top_k: int = 20, min_score: float = 0.01) -> list[dict]:
    """Detections per image: the ``top_k`` heatmap peaks, each reported per class with score >= ``min_score``."""
    heat = heat_logits.sigmoid()  # (B, 1, H, W)
    peaks = heat == F.max_pool2d(heat, 3, stride=1, padding=1)  # local maxima: the max-pool is the NMS
    probs = cls_logits.softmax(dim=1)
    n_cls, (img_h, img_w) = cls_logits.shape[1], image_size
    out = []
    for b in range(len(heat)):
        score = torch.where(peaks[b, 0], heat[b, 0], torch.zeros_like(heat[b, 0])).flatten()
        top = score.topk(min(top_k, score.numel())).indices  # (k,) flat cell indices
        rows, cols = top // heat.shape[-1], top % heat.shape[-1]
        sides = box_pred[b, :, rows, cols].T.exp()  # (k, 4) l, t, r, b in cells
        cx, cy = cols.float() + 0.5, rows.float() + 0.5
        boxes = torch.stack([cx - sides[:, 0], cy - sides[:, 1], cx + sides[:, 2], cy + sides[:, 3]], 1) * stride
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, img_w)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, img_h)
        scores = score[top, None] * probs[b, :, rows, cols].T  # (k, C): centre score × class probability
        keep = scores >= min_score
        peak, label = keep.nonzero(as_tuple=True)
        out.append({"boxes": boxes[peak], "labels": label + 1, "scores": scores[peak, label]})
    return out


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class TinyCenterNet(nn.Module):
    """Six conv-BN-ReLU layers down to stride 4, then three 1×1 heads: centre, classes, box sides. NCHW."""

    stride = 4

    def __init__(self, num_classes: int, width: int = 16, mean: Sequence[float] = (0.5, 0.5, 0.5),
                 std: Sequence[float] = (0.25, 0.25, 0.25), top_k: int = 20, min_score: float = 0.01):
        super().__init__()
        w = width
        self.backbone = nn.Sequential(_conv(3, w // 2), _conv(w // 2, w, 2), _conv(w, w),
                                      _conv(w, 2 * w, 2), _conv(2 * w, 2 * w), _conv(2 * w, 2 * w))
        self.heat = nn.Conv2d(2 * w, 1, 1)
        self.cls = nn.Conv2d(2 * w, num_classes, 1)
        self.box = nn.Conv2d(2 * w, 4, 1)
        nn.init.constant_(self.heat.bias, -2.19)  # start by predicting "centre" with probability 0.1 everywhere
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.top_k, self.min_score = top_k, min_score

    def heads(self, images) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Raw outputs: centre logits (B, 1, h, w), class logits (B, C, h, w), log box sides (B, 4, h, w)."""
        x = images if isinstance(images, torch.Tensor) else torch.stack(list(images))
        f = self.backbone((x - self.mean) / self.std)  # (B, 2w, H/4, W/4)
        return self.heat(f), self.cls(f), self.box(f)

    def forward(self, images, targets: Sequence[dict] | None = None):
        heat, cls, box = self.heads(images)
        if self.training:
            if targets is None:
                raise ValueError("in train mode the model needs targets (a dict with boxes and labels per image)")
            return centernet_loss(heat, cls, box, targets, self.stride)
        size = (images[0].shape[-2], images[0].shape[-1])
        return decode_centers(heat, cls, box, self.stride, size, self.top_k, self.min_score)
