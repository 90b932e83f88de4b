"""course_utils.detection against torchvision (AnchorGenerator, Matcher) and pycocotools, plus hand-made cases."""
from __future__ import annotations

import pytest
import torch
from torchvision.models.detection._utils import Matcher
from torchvision.ops import box_iou

from course_utils.detection import (COCO_STATS, BoxLoader, anchor_boxes, coco_evaluate, flip_boxes,
                                    label_proposals, to_coco)


def _random_boxes(n: int, g: torch.Generator, extent: float = 80.0) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=g) * extent
    return torch.cat([xy, xy + 4 + torch.rand(n, 2, generator=g) * 40], dim=1)


def test_anchor_boxes_count_centres_sizes_and_ratios():
    a = anchor_boxes(64, 96, sizes=(8, 16), ratios=(0.5, 1.0, 2.0), stride=16)
    assert a.shape == ((64 // 16) * (96 // 16) * 2 * 3, 4)
    centres = (a[:, :2] + a[:, 2:]) / 2
    assert set(centres[:, 0].tolist()) == {0.0, 16.0, 32.0, 48.0, 64.0, 80.0}  # one per feature-map column
    wh = a[:, 2:] - a[:, :2]
    first = wh[:6]  # the 2 sizes × 3 ratios of the first position
    areas = (first[:, 0] * first[:, 1]).sqrt()
    assert sorted(round(v) for v in areas.tolist()) == [8, 8, 8, 16, 16, 16]
    ratios = sorted((h / w).item() for w, h in first)  # torchvision rounds corners to whole pixels
    assert ratios == pytest.approx([0.5, 0.5, 1.0, 1.0, 2.0, 2.0], abs=0.25)


@pytest.mark.parametrize("fg, bg", [(0.5, 0.0), (0.5, 0.1), (0.7, 0.3)])
def test_label_proposals_matches_torchvisions_matcher(fg, bg):
    g = torch.Generator().manual_seed(0)
    gt = _random_boxes(5, g)
    near = gt.repeat(20, 1) + torch.randn(100, 4, generator=g) * 3  # jittered copies: some IoUs above 0.7
    props = torch.cat([_random_boxes(200, g), near])
    classes = torch.tensor([4, 1, 9, 2, 7])
    labels, matched = label_proposals(props, gt, classes, fg_iou=fg, bg_iou=bg)
    m = Matcher(fg, bg, allow_low_quality_matches=False)(box_iou(gt, props))  # (P,): gt index, or -1 / -2
    expected = torch.where(m >= 0, classes[m.clamp(min=0)], torch.where(m == Matcher.BETWEEN_THRESHOLDS, 0, -1))
    assert torch.equal(labels, expected)
    assert torch.equal(matched[m >= 0], m[m >= 0])
    assert (labels > 0).any() and (labels == 0).any()  # the random case exercises both outcomes


def test_label_proposals_edge_cases():
    gt = torch.tensor([[0.0, 0, 10, 10]])
    half = torch.tensor([[0.0, 0, 10, 20], [0.0, 0, 10, 21]])  # IoU exactly 0.5, then just below
    labels, matched = label_proposals(half, gt, torch.tensor([3]))
    assert labels.tolist() == [3, 0] and matched.tolist() == [0, 0]
    labels, matched = label_proposals(half, torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64))
    assert labels.tolist() == [0, 0] and matched.tolist() == [-1, -1] and labels.dtype == torch.int64


def test_flip_boxes_mirrors_and_is_its_own_inverse():
    b = torch.tensor([[2.0, 3, 10, 7]])
    assert flip_boxes(b, 20).tolist() == [[10.0, 3, 18, 7]]
    torch.testing.assert_close(flip_boxes(flip_boxes(b, 20), 20), b)


def _toy_set(n: int = 10, size: int = 16):
    images = torch.zeros(n, 3, size, size, dtype=torch.uint8)
    targets = []
    for i in range(n):
        images[i, :, 2:6, 1:4] = 255  # a white box at x 1..4, y 2..6
        targets.append({"boxes": torch.tensor([[1.0, 2, 4, 6]]), "labels": torch.tensor([i % 3 + 1])})
    return images, targets


def test_box_loader_covers_every_image_once_and_is_seeded():
    images, targets = _toy_set()
    loader = BoxLoader(images, targets, batch_size=4, seed=3)
    assert len(loader) == 3
    first = [t["labels"].item() for _, ts in loader for t in ts]
    assert len(first) == 10
    loader.set_epoch(0)
    again = [t["labels"].item() for _, ts in loader for t in ts]
    assert first == again  # epoch 0 again: same order
    x, _ = next(iter(BoxLoader(images, targets, batch_size=10, shuffle=False)))
    assert x.dtype == torch.float32 and x.max() == 1.0 and x.shape == (10, 3, 16, 16)


def test_box_loader_flips_boxes_with_their_image():
    images, targets = _toy_set()
    flipped = 0
    for x, ts in BoxLoader(images, targets, batch_size=10, flip=True, seed=0):
        for img, t in zip(x, ts):
            x1, y1, x2, y2 = t["boxes"][0].long().tolist()
            assert img[:, y1:y2, x1:x2].min() == 1.0 and img.sum() == 3 * 12  # the white pixels are in the box
            flipped += x1 != 1
    assert 0 < flipped < 10
    assert targets[0]["boxes"].tolist() == [[1.0, 2, 4, 6]]  # the stored targets are not modified


def test_box_loader_rejects_bad_input():
    images, targets = _toy_set()
    with pytest.raises(ValueError, match="uint8"):
        BoxLoader(images.float(), targets, 4)
    with pytest.raises(ValueError, match="one target"):
        BoxLoader(images, targets[:3], 4)


def test_to_coco_uses_xywh_and_one_category_per_label():
    tgt = [{"boxes": torch.tensor([[1.0, 2, 5, 10]]), "labels": torch.tensor([2])}]
    out = [{"boxes": torch.tensor([[0.0, 0, 4, 4]]), "labels": torch.tensor([7]), "scores": torch.tensor([0.5])}]
    gt, res = to_coco(out, tgt)
    assert gt["annotations"][0]["bbox"] == [1.0, 2.0, 4.0, 8.0] and gt["annotations"][0]["area"] == 32.0
    assert [c["id"] for c in gt["categories"]] == [2, 7]
    assert res == [{"image_id": 1, "category_id": 7, "score": 0.5, "bbox": [0.0, 0.0, 4.0, 4.0]}]


def test_coco_evaluate_perfect_and_empty():
    tgt = [{"boxes": torch.tensor([[0.0, 0, 40, 40], [50, 50, 90, 90]]), "labels": torch.tensor([1, 2])}]
    perfect = [{**{k: v.clone() for k, v in tgt[0].items()}, "scores": torch.tensor([0.9, 0.8])}]
    stats = coco_evaluate(perfect, tgt)
    assert list(stats) == list(COCO_STATS)
    assert stats["AP"] == pytest.approx(1.0) and stats["AP50"] == pytest.approx(1.0)
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64), "scores": torch.zeros(0)}]
    assert coco_evaluate(empty, tgt)["AP50"] == 0.0


def test_error_counts_sorts_each_object_and_box():
    from course_utils.detection import error_counts
    truth = {"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]), "labels": torch.tensor([1, 2, 3])}
    found = {"boxes": torch.tensor([[0.0, 0, 10, 11], [21, 20, 31, 30], [60, 60, 70, 70]]), "labels": torch.tensor([1, 5, 3])}
    # object 1 found, object 2 only with the wrong class, object 3 missed; the third box is a false alarm
    assert error_counts(found, truth) == {"found": 1, "wrong class": 1, "missed": 1, "false alarms": 1}
    none = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    assert error_counts(none, truth) == {"found": 0, "wrong class": 0, "missed": 3, "false alarms": 0}
    assert error_counts(found, {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)})["false alarms"] == 3


def test_keep_confident_drops_duplicates_across_classes_and_low_scores():
    from course_utils.detection import keep_confident

    d = {"boxes": torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]),
         "labels": torch.tensor([1, 2, 1, 3]), "scores": torch.tensor([0.9, 0.5, 0.05, 0.3])}
    kept = keep_confident(d, min_score=0.1)
    assert kept["labels"].tolist() == [1, 3]  # the second class of the same box goes; the 0.05 box too
    assert kept["scores"].tolist() == pytest.approx([0.9, 0.3])


def test_tiny_faster_rcnn_trains_and_predicts_with_the_decks_batch():
    from course_utils.detection import tiny_faster_rcnn

    torch.manual_seed(0)
    model = tiny_faster_rcnn(num_classes=4)
    assert model.roi_heads.fg_bg_sampler.batch_size_per_image == 128
    assert model.roi_heads.fg_bg_sampler.positive_fraction == 0.25
    images = [torch.rand(3, 128, 128)]
    targets = [{"boxes": torch.tensor([[10.0, 20, 60, 70]]), "labels": torch.tensor([2])}]
    model.train()
    losses = model(images, targets)
    assert sorted(losses) == ["loss_box_reg", "loss_classifier", "loss_objectness", "loss_rpn_box_reg"]
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        out = model(images)[0]
    assert out["boxes"].shape[1] == 4 and len(out["boxes"]) == len(out["scores"]) == len(out["labels"])


def test_trivial_detections_prior_and_random():
    from course_utils.detection import trivial_detections

    train = [{"boxes": torch.tensor([[0.0, 0, 10, 10]]), "labels": torch.tensor([2])},
             {"boxes": torch.tensor([[10.0, 10, 20, 30]]), "labels": torch.tensor([2])}]
    out = trivial_detections(train, 3, 64, 5, k=7, seed=1)
    assert len(out["prior"]) == len(out["random"]) == 3
    assert out["prior"][0]["boxes"].tolist() == [[5.0, 5.0, 15.0, 20.0]] and out["prior"][0]["labels"].tolist() == [2]
    r = out["random"][0]
    assert r["boxes"].shape == (7, 4) and r["boxes"].max() <= 64 and (r["boxes"][:, 2:] > r["boxes"][:, :2]).all()
    assert r["labels"].min() >= 1 and r["labels"].max() <= 5
    again = trivial_detections(train, 3, 64, 5, k=7, seed=1)["random"][2]
    assert torch.equal(again["boxes"], out["random"][2]["boxes"])  # the same seed, the same boxes


def test_finetune_loaders_give_lists_of_images_and_targets():
    import course_utils
    from course_utils.detection import finetune_loaders

    cfg = course_utils.setup("smoke", 0, quiet=True)
    train, val = finetune_loaders("voc_det", cfg, 6, 3, batch_size=4)
    images, targets = next(iter(train))
    assert isinstance(images, (list, tuple)) and len(images) == 4 and images[0].dtype == torch.float32
    assert float(images[0].max()) <= 1.0 and {"boxes", "labels"} <= set(targets[0])
    assert len(train) == 2 and len(val) == 1 and len(next(iter(val))[0]) == 3
