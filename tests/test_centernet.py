"""course_utils.centernet: targets by hand, decode(perfect outputs) gives back the boxes (AP 1), the model trains."""
from __future__ import annotations

import math

import pytest
import torch

from course_utils.centernet import TinyCenterNet, center_heatmap, centernet_loss, decode_centers
from course_utils.metrics import DetectionAP

pytestmark = pytest.mark.usefixtures("one_thread")

TARGETS = [{"boxes": torch.tensor([[4.0, 8, 20, 24], [36, 36, 60, 52]]), "labels": torch.tensor([2, 5])},
           {"boxes": torch.tensor([[10.0, 30, 30, 62]]), "labels": torch.tensor([1])}]


def test_heatmap_peaks_at_each_centre_and_falls_off_as_a_gaussian():
    heat, image, cell = center_heatmap(TARGETS, (16, 16), stride=4)
    assert heat.shape == (2, 16, 16) and image.tolist() == [0, 0, 1]
    assert cell.tolist() == [[4, 3], [11, 12], [11, 5]]  # (row, col) of centres (12, 16), (48, 44), (20, 46) / 4
    assert heat[0, 4, 3] == 1 and heat[0, 11, 12] == 1 and heat[1, 11, 5] == 1
    assert int((heat == 1).sum()) == 3
    # first box: 4 cells wide, sigma = 4/6; centre (3.0, 4.0) in cells; the cell (row 4, col 4) has centre (4.5, 4.5)
    sigma = 4 / 6
    assert heat[0, 4, 4].item() == pytest.approx(math.exp(-(1.5 ** 2 + 0.5 ** 2) / (2 * sigma ** 2)), rel=1e-5)


def _perfect_outputs(targets, grid=16, stride=4, n_cls=6):
    """Logits a flawless model would output: the heatmap, one-hot classes and exact log sides at centres."""
    heat, image, cell = center_heatmap(targets, (grid, grid), stride)
    heat_logits = torch.logit(heat.clamp(1e-4, 1 - 1e-4))[:, None]
    cls = torch.full((len(targets), n_cls, grid, grid), -10.0)
    box = torch.zeros(len(targets), 4, grid, grid)
    boxes = torch.cat([t["boxes"] for t in targets]) / stride
    labels = torch.cat([t["labels"] for t in targets]) - 1
    centre = cell.flip(1).float() + 0.5
    sides = torch.cat([centre - boxes[:, :2], boxes[:, 2:] - centre], 1)
    for k, (b, (r, c)) in enumerate(zip(image.tolist(), cell.tolist())):
        cls[b, labels[k], r, c] = 10.0
        box[b, :, r, c] = sides[k].log()
    return heat_logits, cls, box


def test_decoding_perfect_outputs_gives_the_boxes_back():
    heat, cls, box = _perfect_outputs(TARGETS)
    out = decode_centers(heat, cls, box, stride=4, image_size=(64, 64), top_k=10, min_score=0.5)
    for o, t in zip(out, TARGETS):
        order = o["boxes"][:, 0].argsort()
        torch.testing.assert_close(o["boxes"][order], t["boxes"][t["boxes"][:, 0].argsort()], atol=1e-4, rtol=0)
        assert sorted(o["labels"].tolist()) == sorted(t["labels"].tolist())
    ap = DetectionAP()
    ap.update(out, TARGETS)
    assert ap.compute() == pytest.approx(1.0)


def test_loss_is_small_for_perfect_outputs_and_large_for_a_blank_model():
    good = centernet_loss(*_perfect_outputs(TARGETS), TARGETS, stride=4)
    assert set(good) == {"loss_heat", "loss_cls", "loss_box"}
    assert good["loss_cls"] < 1e-3 and good["loss_box"] < 1e-4 and good["loss_heat"] < 0.05
    zeros = lambda c: torch.zeros(2, c, 16, 16)
    blank = centernet_loss(zeros(1), zeros(6), zeros(4), TARGETS, stride=4)
    assert blank["loss_cls"].item() == pytest.approx(math.log(6), rel=1e-5)  # uniform over 6 classes
    assert blank["loss_heat"] > 10 * good["loss_heat"]


def test_model_follows_torchvisions_protocol_and_learns_a_tiny_set():
    torch.manual_seed(0)
    model = TinyCenterNet(num_classes=6, width=8)
    images = torch.rand(2, 3, 64, 64)
    for t, img in zip(TARGETS, images):  # paint each object so there is something to learn
        for x1, y1, x2, y2 in t["boxes"].long().tolist():
            img[:, y1:y2, x1:x2] = 1.0
    model.train()
    with pytest.raises(ValueError, match="targets"):
        model(images)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss = sum(model(list(images), TARGETS).values())
        first = first if first is not None else loss.item()
        opt.zero_grad(); loss.backward(); opt.step()
    assert loss.item() < 0.3 * first
    model.eval()
    out = model(images)
    assert len(out) == 2 and set(out[0]) == {"boxes", "labels", "scores"}
    assert out[0]["labels"].dtype == torch.int64 and out[0]["labels"].min() >= 1 and out[0]["labels"].max() <= 6
    assert out[0]["boxes"].min() >= 0 and out[0]["boxes"].max() <= 64


def test_losses_stay_finite_under_bf16_autocast():
    torch.manual_seed(0)
    model = TinyCenterNet(num_classes=6, width=8).train()
    with torch.no_grad():
        model.heat.bias.fill_(12.0)  # confident everywhere: 1 - p rounds to 0 in bf16
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model(torch.rand(2, 3, 64, 64), TARGETS)
    assert all(torch.isfinite(v) for v in losses.values())
