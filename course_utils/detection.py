"""Object detection helpers for lesson 10: label boxes against ground truth, batch detection data, COCO evaluation.

    anchors = anchor_boxes(128, 128, sizes=(16, 32, 64), ratios=(0.5, 1.0, 2.0), stride=8)  # (2304, 4)
    labels, matched = label_proposals(anchors, gt["boxes"], gt["labels"])   # 0 = background, -1 = ignored
    loader = BoxLoader(images, targets, batch_size=32, flip=True, seed=0)   # feeds course_utils.train.fit
    stats = coco_evaluate(outputs, targets)                                 # pycocotools' COCOeval numbers
    model = tiny_faster_rcnn(num_classes=6)                                 # torchvision's Faster R-CNN, tiny
    train, val = finetune_loaders("voc_det", cfg, 160, 60, batch_size=4)    # lists of images and targets
    baselines = trivial_detections(train_targets, 200, 64, num_classes=10)  # "prior" and "random" detectors

Conventions, as torchvision's detection models: boxes are float xyxy in pixels (x1, y1 exclusive), a
target is ``{"boxes": (K, 4), "labels": int64 (K,)}`` with class 0 reserved for background, an output adds
``"scores"``. Box arithmetic itself (IoU, format conversion, NMS) comes from ``torchvision.ops``.
"""
from __future__ import annotations

import contextlib
import io
import math
from typing import Iterator, Sequence

import torch
from torchvision.ops import box_iou

__all__ = ["anchor_boxes", "label_proposals", "BoxLoader", "flip_boxes", "to_coco", "coco_evaluate", "COCO_STATS",
           "error_counts", "keep_confident", "trivial_detections", "finetune_loaders", "tiny_faster_rcnn", "pretrained_faster_rcnn"]


def anchor_boxes(height: int, width: int, sizes: Sequence[int], ratios: Sequence[float],
                 stride: int) -> torch.Tensor:
    """Faster R-CNN's anchors (torchvision's ``AnchorGenerator``) for one image: (N, 4) xyxy.

    One anchor per size and aspect ratio (height / width) at every ``stride``-th pixel: the positions of
    a ``stride``-times coarser feature map, ``(height // stride) * (width // stride) * len(sizes) * len(ratios)``
    boxes in all, each of area about size² and centred on its position.
    """
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.image_list import ImageList

    generator = AnchorGenerator((tuple(sizes),), (tuple(ratios),))
    images = ImageList(torch.zeros(1, 3, height, width), [(height, width)])
    return generator(images, [torch.zeros(1, 1, height // stride, width // stride)])[0]


def label_proposals(proposals: torch.Tensor, gt_boxes: torch.Tensor, gt_labels: torch.Tensor,
                    fg_iou: float = 0.5, bg_iou: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Class of each proposal (P, 4) from its best-overlapping ground truth (G, 4): ``(labels, matched)``.

    IoU >= ``fg_iou``: that ground truth's class (a positive); ``bg_iou`` <= IoU < ``fg_iou``: 0, background;
    IoU < ``bg_iou``: -1, left out of training (Fast R-CNN used ``bg_iou=0.1``). ``matched`` is the index of
    the best ground truth, or -1 when the image has none.
    """
    n = len(proposals)
    if len(gt_boxes) == 0:
        return torch.zeros(n, dtype=torch.int64), torch.full((n,), -1, dtype=torch.int64)
    best, matched = box_iou(proposals, gt_boxes).max(dim=1)  # (P,) best IoU and which ground truth
    labels = torch.where(best >= fg_iou, gt_labels[matched], torch.zeros_like(gt_labels[matched]))
    labels[best < bg_iou] = -1
    return labels, matched


def flip_boxes(boxes: torch.Tensor, width: float) -> torch.Tensor:
    """xyxy boxes of an image of ``width`` pixels after a horizontal flip."""
    return torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1)


class BoxLoader:
    """Batches ``(images float B×3×H×W in [0, 1], [target dict, ...])`` from uint8 images held in memory.

    For detection sets small enough to keep in memory (the shapes world): one index operation per batch,
    optional random horizontal flips (boxes flipped with their image), order and flips seeded per epoch
    (``seed + epoch``, as :class:`course_utils.train.TensorLoader`), so ``fit`` runs are reproducible.
    """

    def __init__(self, images: torch.Tensor, targets: Sequence[dict], batch_size: int, shuffle: bool = True,
                 flip: bool = False, seed: int = 0, device: str | torch.device = "cpu"):
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"BoxLoader wants uint8 images N×3×H×W, got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} targets: give one target dict per image")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.targets = [{k: v.to(self.device) for k, v in t.items()} for t in targets]
        self.batch_size, self.shuffle, self.flip, self.seed = batch_size, shuffle, flip, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass use epoch ``epoch``'s order and flips."""
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, list[dict]]]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        n = len(self.images)
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            x = self.images[idx.to(self.device)].float().div_(255)  # (B, 3, H, W)
            targets = [dict(self.targets[i]) for i in idx.tolist()]
            if self.flip:
                flip = (torch.rand(len(idx), generator=g) < 0.5).tolist()
                for k, f in enumerate(flip):
                    if f:
                        x[k] = x[k].flip(-1)
                        targets[k]["boxes"] = flip_boxes(targets[k]["boxes"], x.shape[-1])
            yield x, targets

    def __repr__(self) -> str:
        return (f"BoxLoader({len(self.images)} images {tuple(self.images.shape[1:])}, "
                f"batch_size={self.batch_size}, {len(self)} batches, flip={self.flip})")


def to_coco(outputs: Sequence[dict], targets: Sequence[dict]) -> tuple[dict, list[dict]]:
    """Torchvision-style outputs and targets -> (COCO ground-truth dict, COCO results list); images 1..N."""
    images, annotations, results, classes = [], [], [], set()
    for i, (out, tgt) in enumerate(zip(outputs, targets), start=1):
        images.append({"id": i, "width": 0, "height": 0})
        for box, label in zip(tgt["boxes"].tolist(), tgt["labels"].tolist()):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": int(label),
                                "bbox": [box[0], box[1], w, h], "area": w * h, "iscrowd": 0})
            classes.add(int(label))
        for box, label, score in zip(out["boxes"].tolist(), out["labels"].tolist(), out["scores"].tolist()):
            results.append({"image_id": i, "category_id": int(label), "score": float(score),
                            "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
            classes.add(int(label))
    gt = {"images": images, "annotations": annotations, "categories": [{"id": c} for c in sorted(classes)]}
    return gt, results


COCO_STATS = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR1", "AR10", "AR100",
              "AR_small", "AR_medium", "AR_large")


def coco_evaluate(outputs: Sequence[dict], targets: Sequence[dict]) -> dict[str, float]:
    """pycocotools' box evaluation of torchvision-style lists: ``{"AP": AP@[.5:.95], "AP50": ..., ...}``.

    The twelve numbers COCOeval prints (``COCO_STATS`` order); -1 where a number is undefined (no object of
    that size). Printing is silenced. With no detections at all, every AP and AR is 0.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_dict, results = to_coco(outputs, targets)
    if not results:
        return {k: 0.0 for k in COCO_STATS}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = gt_dict
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(results), iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {k: float(v) for k, v in zip(COCO_STATS, ev.stats)}


def error_counts(detections: dict, target: dict, iou_threshold: float = 0.5) -> dict[str, int]:
    """One image's errors: objects found (a box of the right class at IoU >= threshold), found only with
    the wrong class, or missed; and false alarms (boxes that overlap no object by the threshold). Boxes xyxy."""
    boxes, labels = detections["boxes"].float().cpu(), detections["labels"].cpu()
    true_boxes, true_labels = target["boxes"].float().cpu(), target["labels"].cpu()
    hit = box_iou(true_boxes, boxes) >= iou_threshold                  # (G, D)
    found = (hit & (true_labels[:, None] == labels[None])).any(dim=1)  # (G,)
    return {"found": int(found.sum()), "wrong class": int((hit.any(dim=1) & ~found).sum()),
            "missed": int((~hit.any(dim=1)).sum()), "false alarms": int((~hit.any(dim=0)).sum())}


def keep_confident(detections: dict, min_score: float = 0.1, iou_threshold: float = 0.5) -> dict:
    """One image's detections thinned for display: each box's best class (class-agnostic NMS), score > min_score."""
    from torchvision.ops import nms

    keep = nms(detections["boxes"], detections["scores"], iou_threshold)
    keep = keep[detections["scores"][keep] > min_score]
    return {key: value[keep] for key, value in detections.items()}


def tiny_faster_rcnn(num_classes: int):
    """torchvision's Faster R-CNN on a 3-layer backbone (stride 8, 32 channels), sized for 128×128 images.

    Anchors of 16, 32 and 64 pixels at three aspect ratios; 300 proposals before the RPN's NMS and 100 after;
    the second stage samples the deck's 128 RoIs per image, 25 % positive (32 + 96). ``num_classes`` counts
    the background.
    """
    from torch import nn
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.rpn import AnchorGenerator
    from torchvision.ops import MultiScaleRoIAlign

    def conv(c_in: int, c_out: int) -> list:
        return [nn.Conv2d(c_in, c_out, 3, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

    backbone = nn.Sequential(*conv(3, 16), *conv(16, 32), *conv(32, 32))
    backbone.out_channels = 32
    return FasterRCNN(backbone, num_classes, min_size=128, max_size=128,
                      rpn_anchor_generator=AnchorGenerator(((16, 32, 64),), ((0.5, 1.0, 2.0),)),
                      box_roi_pool=MultiScaleRoIAlign(["0"], output_size=7, sampling_ratio=2),
                      rpn_pre_nms_top_n_train=300, rpn_post_nms_top_n_train=100,
                      rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=100,
                      box_batch_size_per_image=128, box_positive_fraction=0.25)


def pretrained_faster_rcnn(name: str, num_classes: int, cfg=None):
    """A COCO-pretrained torchvision detector (``transfer.pretrained``: weights cached, random in a rehearsal)
    whose box predictor is replaced by a new one for ``num_classes`` (background included); 128 RoIs per image."""
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor

    from .transfer import pretrained

    model = pretrained(name, cfg=cfg, box_batch_size_per_image=128)  # the deck's 32 + 96
    in_features = model.roi_heads.box_predictor.cls_score.in_features
    model.roi_heads.box_predictor = FastRCNNPredictor(in_features, num_classes)
    return model


def trivial_detections(train_targets: Sequence[dict], n_images: int, size: int, num_classes: int, k: int = 20,
                       seed: int = 0) -> dict[str, list[dict]]:
    """Two detectors that never look at the image, for ``n_images`` images of ``size`` × ``size`` pixels:
    ``"prior"``, in every image the most common training class (labels 1..``num_classes``) at the average
    training box, score 1; ``"random"``, ``k`` random boxes per image (corner in the first 80% of the image,
    6 to 6 + 0.4 ``size`` pixels wide and high, clipped), random classes and scores from a generator seeded
    with ``seed``. A trained detector's mAP means something only above theirs."""
    boxes = torch.cat([t["boxes"] for t in train_targets])
    common = torch.cat([t["labels"] for t in train_targets]).mode().values
    prior = [{"boxes": boxes.mean(dim=0, keepdim=True), "labels": common.view(1), "scores": torch.ones(1)}
             for _ in range(n_images)]
    g = torch.Generator().manual_seed(seed)

    def random_boxes() -> dict:
        xy = torch.rand(k, 2, generator=g) * size * 0.8
        return {"boxes": torch.cat([xy, xy + 6 + torch.rand(k, 2, generator=g) * size * 0.4], dim=1).clamp(max=size),
                "labels": torch.randint(1, num_classes + 1, (k,), generator=g), "scores": torch.rand(k, generator=g)}

    return {"prior": prior, "random": [random_boxes() for _ in range(n_images)]}


def finetune_loaders(name: str, cfg, n_train: int, n_val: int, batch_size: int, val_batch_size: int = 8):
    """``(train, val)`` loaders for fine-tuning a torchvision detector on the first ``n_train`` / ``n_val``
    images of dataset ``name`` (e.g. ``"voc_det"``): the course's train transforms (photometric distortion, random flip,
    float images in [0, 1]) and eval transforms, batches as lists of images and of target dicts (what a
    torchvision detector takes; images keep their own sizes), the training set shuffled. No worker
    processes in ``smoke`` (starting them would cost more than the few images they load)."""
    from torch.utils.data import Subset

    from .data import eval_transforms, get_dataset, make_loader, train_transforms

    workers = 0 if cfg.smoke else None
    train_ds = get_dataset(name, "train", cfg, transforms=train_transforms(name, cfg))
    val_ds = get_dataset(name, "val", cfg, transforms=eval_transforms(name, cfg))
    return (make_loader(Subset(train_ds, range(n_train)), batch_size, shuffle=True, num_workers=workers, lists=True),
            make_loader(Subset(val_ds, range(n_val)), val_batch_size, num_workers=workers, lists=True))
