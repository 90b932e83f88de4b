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
