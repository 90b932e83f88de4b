"""course_utils.metrics against references: torchvision's reference accuracy, counting loops, hand-worked IoU/AP."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_utils import metrics as M


def _torchvision_reference_accuracy(output, target, topk=(1,)):
    """Copied from torchvision/references/classification/utils.py (returns percentages)."""
    with torch.inference_mode():
        maxk = max(topk)
        batch_size = target.size(0)
        if target.ndim == 2:
            target = target.max(dim=1)[1]
        _, pred = output.topk(maxk, 1, True, True)
        pred = pred.t()
        correct = pred.eq(target[None])
        res = []
        for k in topk:
            correct_k = correct[:k].flatten().sum(dtype=torch.float32)
            res.append(correct_k * (100.0 / batch_size))
        return res


def test_accuracy_matches_torchvision_reference():
    g = torch.Generator().manual_seed(0)
    out, y = torch.randn(200, 10, generator=g), torch.randint(0, 10, (200,), generator=g)
    ours = M.accuracy(out, y, topk=(1, 5))
    ref = _torchvision_reference_accuracy(out, y, topk=(1, 5))
    assert [float(a) for a in ours] == pytest.approx([float(r) / 100 for r in ref])
    assert float(M.accuracy(out, y, topk=1)) == pytest.approx(float(ref[0]) / 100)
    assert float(M.accuracy(torch.eye(3), torch.tensor([0, 1, 0]), topk=1)) == pytest.approx(2 / 3)


def test_confusion_matrix_matches_counting_loop():
    g = torch.Generator().manual_seed(1)
    pred, target = torch.randint(0, 4, (500,), generator=g), torch.randint(0, 4, (500,), generator=g)
    target[:20] = 255
    cm = M.confusion_matrix(pred, target, 4, ignore_index=255)
    ref = np.zeros((4, 4), dtype=np.int64)
    for p, t in zip(pred.tolist(), target.tolist()):
        if t != 255:
            ref[t, p] += 1  # rows = true class, columns = prediction
    np.testing.assert_array_equal(cm.numpy(), ref)
    logits = torch.nn.functional.one_hot(pred, 4).float()  # logits give the same matrix
    assert torch.equal(M.confusion_matrix(logits, target, 4, ignore_index=255), cm)


def test_mean_iou_hand_computed():
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 255]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 0, 2]])
    # class 0: tp 1, fp 1 (pixel 5), fn 1 -> 1/3; class 1: tp 2, fp 1 -> 2/3; class 2: tp 1, fn 1 -> 1/2
    per_class = M.iou_from_confusion(M.confusion_matrix(pred, target, 3, 255))
    assert per_class.tolist() == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert M.mean_iou(pred, target, 3) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    # a class absent from both prediction and target is left out of the mean
    assert M.mean_iou(pred, target, 4) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)


def test_mean_iou_accumulates_over_batches_like_one_big_batch():
    g = torch.Generator().manual_seed(2)
    logits, target = torch.randn(6, 5, 8, 8, generator=g), torch.randint(0, 5, (6, 8, 8), generator=g)
    m = M.MeanIoU()  # num_classes inferred from the logits
    for a, b in zip(logits.split(2), target.split(2)):
        m.update(a, b)
    assert m.compute() == pytest.approx(M.mean_iou(logits, target, 5))
    m.reset()
    assert math.isnan(m.compute())


def test_pixel_accuracy_ignores_unlabelled():
    target = torch.tensor([[0, 1, 255]])
    logits = torch.nn.functional.one_hot(torch.tensor([[0, 0, 1]]), 2).permute(0, 2, 1).float()  # (1, 2, 3)
    assert float(M.pixel_accuracy(logits, target)) == pytest.approx(0.5)


def test_average_precision_hand_computed():
    # detections sorted by score: TP, FP, TP; 3 true objects
    # precision 1, 1/2, 2/3 at recall 1/3, 1/3, 2/3 -> envelope 1, 2/3, 2/3 -> AP = 1/3*1 + 1/3*2/3
    ap = M.average_precision(torch.tensor([0.9, 0.8, 0.7]), torch.tensor([True, False, True]), 3)
    assert ap == pytest.approx(1 / 3 + 2 / 9)


def test_detection_ap_matching():
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    tgt = [{"boxes": torch.cat([box, box + 20]), "labels": torch.tensor([1, 2])}]
    perfect = [{"boxes": torch.cat([box, box + 20]), "labels": torch.tensor([1, 2]),
                "scores": torch.tensor([0.9, 0.8])}]
    m = M.DetectionAP()
    m.update(perfect, tgt)
    assert m.compute() == pytest.approx(1.0)
    # class 1: a duplicate (lower score) is a false positive after the true one -> AP still 1;
    # class 2: box shifted by 5 px (IoU 25/175 < 0.5) -> AP 0
    m.reset()
    dup = [{"boxes": torch.cat([box, box, box + 25]), "labels": torch.tensor([1, 1, 2]),
            "scores": torch.tensor([0.9, 0.5, 0.8])}]
    m.update(dup, tgt)
    assert m.compute() == pytest.approx(0.5)


def test_detection_ap_is_nan_only_without_ground_truth():
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    assert math.isnan(M.average_precision(torch.tensor([0.9]), torch.tensor([False]), 0))  # recall is 0/0
    m = M.DetectionAP()
    assert math.isnan(m.compute())  # nothing seen yet
    only_predicted = [{"boxes": box, "labels": torch.tensor([2]), "scores": torch.tensor([0.9])}]
    m.update(only_predicted, [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}])
    assert math.isnan(m.compute())  # no class has a true object: AP is undefined, not 0
    m.update([{"boxes": box, "labels": torch.tensor([1]), "scores": torch.tensor([0.8])}],
             [{"boxes": box, "labels": torch.tensor([1])}])
    assert m.compute() == pytest.approx(1.0)  # class 2 (no truth) is left out of the mean, not counted as 0
    missed = M.DetectionAP()
    missed.update([{"boxes": box + 50, "labels": torch.tensor([1]), "scores": torch.tensor([0.8])}],
                  [{"boxes": box, "labels": torch.tensor([1])}])
    assert missed.compute() == 0.0  # a true object never found: AP 0, not NaN


# ---- DetectionAP against the references: a port of the VOC devkit's rules, and pycocotools' COCOeval -------
def _det(boxes, labels, scores):
    return {**_gt(boxes, labels), "scores": torch.tensor(scores, dtype=torch.float32)}


def _gt(boxes, labels):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(labels, dtype=torch.int64)}


def _iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


def _voc_devkit_map(outputs, targets, thr=0.5):
    """The VOC devkit's per-class evaluation written out plainly (pixel-edge boxes, so no +1, and IoU >= thr)."""
    aps = []
    classes = sorted({int(c) for t in targets for c in t["labels"]})
    for c in classes:
        dets = [(s, i, b) for i, o in enumerate(outputs)
                for b, l, s in zip(o["boxes"].tolist(), o["labels"].tolist(), o["scores"].tolist()) if l == c]
        dets.sort(key=lambda d: -d[0])
        gts = [[b for b, l in zip(t["boxes"].tolist(), t["labels"].tolist()) if l == c] for t in targets]
        used = [[False] * len(g) for g in gts]
        tp = []
        for _, i, b in dets:
            ious = [_iou(b, g) for g in gts[i]]
            j = int(np.argmax(ious)) if ious else -1
            hit = j >= 0 and ious[j] >= thr and not used[i][j]
            if hit:
                used[i][j] = True
            tp.append(hit)
        n = sum(len(g) for g in gts)
        ctp, cfp = np.cumsum(tp), np.cumsum([not t for t in tp])
        rec = np.concatenate([[0.0], ctp / n, [1.0]])
        prec = np.concatenate([[0.0], ctp / np.maximum(ctp + cfp, 1), [0.0]])
        for k in range(len(prec) - 2, -1, -1):
            prec[k] = max(prec[k], prec[k + 1])
        steps = np.where(rec[1:] != rec[:-1])[0]
        aps.append(float(np.sum((rec[steps + 1] - rec[steps]) * prec[steps + 1])))
    return float(np.mean(aps))


def _cases():
    """Hand-made edge cases (name, outputs, targets) and a random one."""
    box = [0.0, 0, 10, 10]
    two = [[0.0, 0, 10, 10], [0, 5, 10, 15]]  # two overlapping objects of one class (IoU 1/3)
    cases = {
        "perfect": ([_det(two, [1, 1], [0.9, 0.8])], [_gt(two, [1, 1])]),
        "duplicate and shifted": ([_det([box, box, [25.0, 25, 35, 35]], [1, 1, 2], [0.9, 0.5, 0.8])],
                                  [_gt([box, [20.0, 20, 30, 30]], [1, 2])]),
        # the 2nd detection overlaps the taken object most (IoU 0.71), the free one by 0.58: VOC FP, COCO TP
        "best match taken": ([_det([[0.0, 0, 10, 10], [0, 1.5, 10, 12]], [1, 1], [0.9, 0.8])],
                             [_gt([[0.0, 0, 10, 10], [0, 4.5, 10, 14.5]], [1, 1])]),
        "class never predicted, class never present, image without objects": (
            [_det([box], [1], [0.7]), _det([box, [50.0, 50, 60, 60]], [3, 1], [0.9, 0.2])],
            [_gt([box, [30.0, 30, 40, 40]], [1, 2]), _gt([], [])]),
        "tied scores": ([_det([box, [0.0, 0, 10, 30], [20.0, 0, 30, 10]], [1, 1, 1], [0.5, 0.5, 0.5])],
                        [_gt([box, [20.0, 0, 30, 10]], [1, 1])]),
        "more than 100 detections": ([_det([[float(k), 0, k + 10.0, 10] for k in range(150)], [1] * 150,
                                           [1 - k / 200 for k in range(150)][::-1])],
                                     [_gt([[140.0, 0, 150, 10], [0.0, 0, 10, 10]], [1, 1])]),
    }
    g = torch.Generator().manual_seed(0)
    outputs, targets = [], []
    for _ in range(25):
        k = int(torch.randint(1, 5, (), generator=g))
        xy = torch.rand(k, 2, generator=g) * 80
        gt_boxes = torch.cat([xy, xy + 10 + torch.rand(k, 2, generator=g) * 30], 1)
        gt_labels = torch.randint(1, 4, (k,), generator=g)
        found = torch.rand(k, generator=g) < 0.8
        noisy = gt_boxes[found] + torch.randn(int(found.sum()), 4, generator=g) * 3
        wrong = torch.randint(1, 4, (len(noisy),), generator=g)
        labels = torch.where(torch.rand(len(noisy), generator=g) < 0.85, gt_labels[found], wrong)
        fp_xy = torch.rand(3, 2, generator=g) * 80
        fp = torch.cat([fp_xy, fp_xy + 15], 1)
        outputs.append({"boxes": torch.cat([noisy, fp]),
                        "labels": torch.cat([labels, torch.randint(1, 4, (3,), generator=g)]),
                        "scores": torch.rand(len(noisy) + 3, generator=g)})
        targets.append({"boxes": gt_boxes, "labels": gt_labels})
    cases["random"] = (outputs, targets)
    return cases


@pytest.mark.parametrize("name", list(_cases()))
def test_detection_ap_coco_style_equals_pycocotools(name):
    from course_utils.detection import coco_evaluate

    outputs, targets = _cases()[name]
    stats = coco_evaluate(outputs, targets)
    for thr, key in ((0.5, "AP50"), (0.75, "AP75")):
        m = M.DetectionAP(thr, style="coco")
        m.update(outputs, targets)
        assert m.compute() == pytest.approx(stats[key], abs=1e-12), f"{name}, IoU {thr}"


@pytest.mark.parametrize("name", list(_cases()))
def test_detection_ap_voc_style_equals_the_devkit_rules(name):
    outputs, targets = _cases()[name]
    m = M.DetectionAP(0.5)
    m.update(outputs, targets)
    assert m.compute() == pytest.approx(_voc_devkit_map(outputs, targets), abs=1e-12), name


def test_voc_and_coco_rules_differ_where_they_should():
    outputs, targets = _cases()["best match taken"]
    voc, coco = M.DetectionAP(0.5), M.DetectionAP(0.5, style="coco")
    voc.update(outputs, targets)
    coco.update(outputs, targets)
    assert voc.compute() == pytest.approx(0.5)  # TP then FP: recall 1/2 at precision 1
    assert coco.compute() == pytest.approx(1.0)  # both matched
    with pytest.raises(ValueError, match="style"):
        M.DetectionAP(0.5, style="yolo")


def test_average_precision_101_points_by_hand():
    # one TP then one FP, 2 objects: recall reaches 0.5 at precision 1 -> 51 of the 101 levels have precision 1
    ap = M.average_precision(torch.tensor([0.9, 0.8]), torch.tensor([True, False]), 2, recall_points=101)
    assert ap == pytest.approx(51 / 101)


def test_detection_ap_per_class_is_what_compute_averages():
    from course_utils.metrics import DetectionAP

    m = DetectionAP(0.5)
    m.update([{"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 9, 9]]),
               "labels": torch.tensor([1, 2, 2]), "scores": torch.tensor([0.9, 0.8, 0.7])}],
             [{"boxes": torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10]]), "labels": torch.tensor([1, 2])}])
    scores, is_tp = m.hits(2)
    assert scores.dtype == torch.float64 and is_tp.tolist() == [False, True]
    per_class = m.per_class()
    assert list(per_class) == [1, 2] and per_class[1] == 1.0 and abs(per_class[2] - 0.5) < 1e-12
    assert abs(m.compute() - 0.75) < 1e-12
