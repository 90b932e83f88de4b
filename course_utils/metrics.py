"""Metrics the lessons report: accuracy, confusion matrix, mean IoU, detection AP at one IoU threshold.

Two kinds, both accepted by ``course_utils.train.evaluate``:

* functions ``metric(output, target) -> scalar tensor`` averaged over batches, weighted by batch size
  (``accuracy``, ``pixel_accuracy``);
* objects with ``reset()``, ``update(output, target)``, ``compute()`` for metrics that are not a mean of
  per-batch values (``MeanIoU``, ``DetectionAP``) — the same protocol as torchmetrics, so its metrics work too.

Layouts: classification ``output`` is logits (N, C), ``target`` int64 (N,); segmentation ``output`` is
logits (N, C, H, W), ``target`` int64 (N, H, W) with ``ignore_index`` (255) for unlabelled pixels;
detection follows torchvision: lists of dicts with ``boxes`` (xyxy, pixels), ``labels`` and ``scores``.
Results are fractions in [0, 1] (torchvision's reference ``accuracy`` returns percentages).
"""
from __future__ import annotations

import torch

__all__ = ["accuracy", "pixel_accuracy", "confusion_matrix", "iou_from_confusion", "mean_iou",
           "MeanIoU", "average_precision", "DetectionAP"]


@torch.no_grad()
def accuracy(output: torch.Tensor, target: torch.Tensor, topk=(1,)):
    """Fraction of samples whose true class is among the top-k logits; a list for a tuple ``topk``."""
    ks = (topk,) if isinstance(topk, int) else tuple(topk)
    pred = output.topk(max(ks), dim=1).indices  # (N, maxk)
    hit = pred.eq(target.view(-1, 1))  # (N, maxk)
    res = [hit[:, :k].any(dim=1).float().mean() for k in ks]
    return res[0] if isinstance(topk, int) else res


def _labels(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Logits (N, C, ...) -> labels (N, ...); labels pass through."""
    return x.argmax(1) if x.ndim == target.ndim + 1 else x


@torch.no_grad()
def pixel_accuracy(output: torch.Tensor, target: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """Fraction of labelled pixels predicted correctly (output logits N×C×H×W or labels N×H×W)."""
    keep = target != ignore_index
    return (_labels(output, target)[keep] == target[keep]).float().mean()


@torch.no_grad()
def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int | None = None) -> torch.Tensor:
    """C×C counts, rows = true class, columns = predicted (as sklearn); ``pred`` may be logits (N, C, ...)."""
    pred = _labels(pred, target).reshape(-1)
    target = target.reshape(-1)
    keep = (target >= 0) & (target < num_classes)
    if ignore_index is not None:
        keep &= target != ignore_index
    idx = target[keep] * num_classes + pred[keep]
    return torch.bincount(idx, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def iou_from_confusion(cm: torch.Tensor) -> torch.Tensor:
    """Per-class IoU = TP / (TP + FP + FN); NaN for a class absent from both prediction and target."""
    cm = cm.double()
    tp = cm.diag()
    union = cm.sum(0) + cm.sum(1) - tp
    return tp / union  # 0/0 -> nan on purpose: such a class says nothing


def mean_iou(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = 255) -> float:
    """Mean over classes of IoU, ignoring classes absent from both prediction and target."""
    return iou_from_confusion(confusion_matrix(pred, target, num_classes, ignore_index)).nanmean().item()


class MeanIoU:
    """Accumulates a confusion matrix over batches; ``compute()`` returns mean IoU (``per_class`` too)."""

    def __init__(self, num_classes: int | None = None, ignore_index: int = 255):
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.reset()

    def reset(self) -> None:
        self.cm = None

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        n = self.num_classes or output.shape[1]  # infer C from the logits on the first batch
        cm = confusion_matrix(output, target, n, self.ignore_index)
        self.cm = cm if self.cm is None else self.cm + cm

    def compute(self) -> float:
        if self.cm is None:
            return float("nan")
        return iou_from_confusion(self.cm).nanmean().item()

    def per_class(self) -> torch.Tensor:
        return iou_from_confusion(self.cm)


def average_precision(scores: torch.Tensor, is_tp: torch.Tensor, n_true: int,
                      recall_points: int | None = None) -> float:
    """Area under the precision-recall curve of one class.

    ``recall_points=None``: all-point interpolation (PASCAL VOC 2010+): the sum over recall steps of the
    step times the best precision at that recall or beyond. ``recall_points=101``: COCO's rule, the mean of
    that best precision at recall 0, 0.01, ..., 1 (0 beyond the highest recall reached), as pycocotools.
    """
    if n_true == 0:
        return float("nan")
    order = scores.argsort(descending=True, stable=True)
    if recall_points is not None:
        return _coco_ap(is_tp[order].numpy(), n_true, recall_points)
    tp = is_tp[order].double().cumsum(0)
    fp = (~is_tp[order]).double().cumsum(0)
    recall = torch.cat([torch.zeros(1, dtype=torch.float64), tp / n_true])
    precision = torch.cat([torch.ones(1, dtype=torch.float64), tp / (tp + fp).clamp(min=1)])
    # make precision monotone (the envelope), then sum precision × recall steps
    precision = precision.flip(0).cummax(0).values.flip(0)
    return float(((recall[1:] - recall[:-1]) * precision[1:]).sum())


def _coco_ap(is_tp, n_true: int, recall_points: int) -> float:
    """COCOeval.accumulate's arithmetic for one class, one IoU threshold (``is_tp`` sorted by score)."""
    import numpy as np

    tp = np.cumsum(is_tp).astype(float)
    fp = np.cumsum(~is_tp).astype(float)
    recall = tp / n_true
    precision = tp / (fp + tp + np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the envelope
    at = np.searchsorted(recall, np.linspace(0.0, 1.0, recall_points), side="left")
    q = np.zeros(recall_points)
    reached = at < len(precision)  # recall levels beyond the highest one reached keep precision 0
    q[reached] = precision[at[reached]]
    return float(q.mean())


class DetectionAP:
    """mAP at one IoU threshold over torchvision-style detection dicts, by VOC's rules (default) or COCO's.

    ``style="voc"`` (the PASCAL VOC 2010+ devkit): per class, detections in score order take the ground
    truth they overlap most; if that one is already taken (or IoU < threshold) they are false positives;
    all-point interpolated AP. ``style="coco"`` (pycocotools' ``COCOeval`` at this one threshold): a
    detection takes the best-overlapping ground truth *not yet taken*; at most 100 detections per image and
    class; precision averaged at 101 recall points. Classes without ground truth are left out of the mean.
    """

    def __init__(self, iou_threshold: float = 0.5, style: str = "voc"):
        if style not in ("voc", "coco"):
            raise ValueError(f"style={style!r}: use 'voc' or 'coco'")
        self.iou_threshold, self.style = iou_threshold, style
        self.reset()

    def reset(self) -> None:
        self.found: dict[int, list] = {}  # class -> [(score, is_tp)]
        self.n_true: dict[int, int] = {}

    def _match(self, iou: torch.Tensor, taken: torch.Tensor, i: int) -> int:
        """Index of the ground truth detection ``i`` takes, or -1."""
        if iou.shape[1] == 0:
            return -1
        if self.style == "voc":
            j = int(iou[i].argmax())
            return j if iou[i, j] >= self.iou_threshold and not taken[j] else -1
        best, m = min(self.iou_threshold, 1 - 1e-10), -1
        for j in range(iou.shape[1]):  # as COCOeval.evaluateImg: the best untaken one, ties to the later
            if not taken[j] and iou[i, j] >= best:
                best, m = float(iou[i, j]), j
        return m

    @torch.no_grad()
    def update(self, outputs: list[dict], targets: list[dict]) -> None:
        from torchvision.ops import box_iou

        for out, tgt in zip(outputs, targets):
            for c in torch.cat([out["labels"], tgt["labels"]]).unique().tolist():
                pb, ps = out["boxes"][out["labels"] == c].cpu(), out["scores"][out["labels"] == c].cpu()
                tb = tgt["boxes"][tgt["labels"] == c].cpu()
                order = ps.argsort(descending=True, stable=True)  # best score first, ties in input order
                if self.style == "coco":
                    order = order[:100]
                self.n_true[c] = self.n_true.get(c, 0) + len(tb)
                taken = torch.zeros(len(tb), dtype=torch.bool)
                iou = box_iou(pb.double(), tb.double()) if len(tb) and len(pb) else torch.zeros(len(pb), len(tb))
                for i in order.tolist():
                    j = self._match(iou, taken, i)
                    if j >= 0:
                        taken[j] = True
                    self.found.setdefault(c, []).append((float(ps[i]), j >= 0))

    def hits(self, c: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Class ``c``'s detections as ``(scores float64, is_tp bool)``, the inputs of ``average_precision``."""
        found = self.found.get(c, [])
        return (torch.tensor([s for s, _ in found], dtype=torch.float64),
                torch.tensor([t for _, t in found], dtype=torch.bool))

    def per_class(self) -> dict[int, float]:
        """AP of each class with ground truth, in class order (``compute`` is their mean)."""
        points = 101 if self.style == "coco" else None
        return {c: average_precision(*self.hits(c), n, points) for c, n in sorted(self.n_true.items())}

    def compute(self) -> float:
        aps = torch.tensor(list(self.per_class().values()), dtype=torch.float64)
        return aps.nanmean().item() if len(aps) else float("nan")
