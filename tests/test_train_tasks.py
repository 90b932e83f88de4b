"""The task-specific steps: segmentation (per-pixel CE, aux head, mIoU) and detection (torchvision loss dicts)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import MultiScaleRoIAlign

from course_utils import metrics as M
from course_utils.train import evaluate, fit, predict
from course_utils.train.tasks import get_task, infer_task


# Tiny models run faster on one thread, and do not fight other processes for the cores.
pytestmark = pytest.mark.usefixtures("one_thread")


class TinySeg(nn.Module):
    """Returns {"out", "aux"} like torchvision segmentation models."""

    def __init__(self, classes=3):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.out, self.aux = nn.Conv2d(8, classes, 1), nn.Conv2d(8, classes, 1)

    def forward(self, x):
        f = self.body(x)
        return {"out": self.out(f), "aux": self.aux(f)}


def seg_data(n=8, classes=3):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, classes, (n, 8, 8), generator=g)
    y[:, 0, :] = 255  # an unlabelled row
    x = nn.functional.one_hot(y.clamp(max=classes - 1), classes).permute(0, 3, 1, 2).float()  # (N, C, H, W)
    return x + 0.1 * torch.randn(n, 3, 8, 8, generator=g), y


def test_segmentation_is_inferred_and_learns_and_reports_miou():
    x, y = seg_data()
    loader = list(zip(x.split(4), y.split(4)))
    torch.manual_seed(0)
    model = TinySeg()
    assert infer_task(model, loader[0]).name == "segmentation"
    h = fit(model, loader, loader, epochs=15, lr=0.1, optimizer="adamw", device="cpu", quiet=True)
    assert h.config["task"] == "segmentation"
    assert h["train_loss"][-1] < h["train_loss"][0]
    logits = predict(model, x)
    assert logits.shape == (8, 3, 8, 8)
    assert h.last["val_miou"] == pytest.approx(M.mean_iou(logits, y, 3), rel=1e-6)
    assert h.last["val_miou"] > 0.6


def test_segmentation_loss_adds_half_the_aux_loss():
    x, y = seg_data()
    model = TinySeg()
    ce = nn.CrossEntropyLoss(ignore_index=255)
    with torch.no_grad():
        out = model(x)
        expect = ce(out["out"], y) + 0.5 * ce(out["aux"], y)
        loss, _ = get_task("segmentation").train_step(model, x, y, ce, check=True)
    assert loss.item() == pytest.approx(expect.item())


def test_segmentation_tta_flips_the_prediction_back():
    x, y = seg_data()
    model = TinySeg().eval()
    with torch.no_grad():
        expect = (model(x)["out"] + model(x.flip(-1))["out"].flip(-1)) / 2
    torch.testing.assert_close(predict(model, x, task="segmentation", tta_flip=True), expect)


def test_segmentation_mask_size_and_class_errors():
    x, y = seg_data()
    with pytest.raises(ValueError, match="same size"):
        fit(TinySeg(), [(x, y[:, :4, :4])], epochs=1, lr=0.1, task="segmentation", quiet=True)
    with pytest.raises(ValueError, match="wrong number of classes"):
        fit(TinySeg(2), [(x, y)], epochs=1, lr=0.1, quiet=True)
    with pytest.raises(TypeError, match="uint8.*long"):  # masks straight from PNG files
        fit(TinySeg(), [(x, y.to(torch.uint8))], epochs=1, lr=0.1, task="segmentation", quiet=True)


def tiny_detector(num_classes=3):
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                             nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
    backbone.out_channels = 16
    anchors = AnchorGenerator(sizes=((8, 16),), aspect_ratios=((0.5, 1.0, 2.0),))
    pool = MultiScaleRoIAlign(featmap_names=["0"], output_size=3, sampling_ratio=2)
    return FasterRCNN(backbone, num_classes=num_classes, rpn_anchor_generator=anchors, box_roi_pool=pool,
                      min_size=32, max_size=32, representation_size=32, box_detections_per_img=10,
                      rpn_pre_nms_top_n_train=100, rpn_post_nms_top_n_train=20, rpn_pre_nms_top_n_test=50,
                      rpn_post_nms_top_n_test=10, rpn_batch_size_per_image=32, box_batch_size_per_image=16)


def det_data(n=4):
    g = torch.Generator().manual_seed(0)
    images, targets = [], []
    for i in range(n):
        img = 0.1 * torch.rand(3, 32, 32, generator=g)
        img[:, 8:20, 4 + i:16 + i] = 0.9  # one bright square per image
        images.append(img)
        box = torch.tensor([[4.0 + i, 8.0, 16.0 + i, 20.0]])  # xyxy, pixels
        targets.append({"boxes": box, "labels": torch.tensor([1 + i % 2])})
    return [(tuple(images[:2]), tuple(targets[:2])), (tuple(images[2:]), tuple(targets[2:]))]


def test_detection_uses_the_models_loss_dict_and_evaluates_map():
    loader = det_data()
    model = tiny_detector()
    assert infer_task(model, loader[0]).name == "detection"
    h = fit(model, loader, loader, epochs=3, lr=0.01, device="cpu", quiet=True)
    assert h.config["task"] == "detection"
    assert h["train_loss"][-1] < h["train_loss"][0]
    assert "val_map50" in h.last and "val_loss" not in h.last  # detectors give no loss in eval mode
    assert "train_map50" not in h.last  # a detector's train step returns no outputs to score (no NaN column)
    out = predict(model, loader)
    assert len(out) == 4 and set(out[0]) == {"boxes", "labels", "scores"}
    m = M.DetectionAP()
    m.update(out, [t for _, ts in loader for t in ts])
    res = evaluate(model, loader, {"map": M.DetectionAP()}, "cpu")
    assert math.isfinite(res["map"])  # every class has ground truth: NaN here would mean a broken metric
    assert res["map"] == pytest.approx(m.compute())


def test_detection_bad_targets():
    (images, targets), _ = det_data()
    with pytest.raises(ValueError, match="wrong number of classes"):
        bad = tuple({**t, "labels": torch.tensor([7])} for t in targets)
        fit(tiny_detector(), [(images, bad)], epochs=1, lr=0.01, quiet=True)
    with pytest.raises(TypeError, match="float 0..1"):
        fit(tiny_detector(), [(tuple((i * 255).to(torch.uint8) for i in images), targets)], epochs=1, lr=0.01,
            quiet=True)


def test_every_public_function_and_method_has_a_docstring():
    import ast
    import inspect

    from course_utils.train import tasks

    tree = ast.parse(inspect.getsource(tasks))
    missing = [f"line {n.lineno}: {n.name}" for n in ast.walk(tree)
               if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")
               and not ast.get_docstring(n)]
    assert not missing, missing
