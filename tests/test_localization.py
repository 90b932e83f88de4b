"""course_utils.localization: box helpers against torchvision, the two-head network, its loss and task with fit."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torchvision import tv_tensors
from torchvision.ops import box_convert, box_iou

from course_utils import localization as L


def small_cnn(num_classes: int, width: int) -> torch.nn.Sequential:
    """The smoke backbone: conv-BN-ReLU-pool x3 (width, 2w, 4w channels), global pool, linear."""
    return simple_cnn([width, 2 * width, 4 * width], num_classes=num_classes, batch_norm=True, global_pool=True)

from course_utils.arch import simple_cnn
from course_utils.train import TensorLoader, fit


def _boxes(n: int, g: torch.Generator) -> torch.Tensor:
    corner = torch.rand(n, 2, generator=g) * 30
    return torch.cat([corner, corner + torch.rand(n, 2, generator=g) * 15 + 0.5], 1)


def test_box_from_mask_is_the_tightest_box_in_pixel_edges():
    mask = torch.zeros(10, 12, dtype=torch.bool)
    mask[2:5, 3:9] = True
    mask[7, 4] = True
    assert L.box_from_mask(mask).tolist() == [3.0, 2.0, 9.0, 8.0]  # x1, y1 exclusive
    with pytest.raises(ValueError, match="empty"):
        L.box_from_mask(torch.zeros(4, 4, dtype=torch.bool))


def test_paired_iou_is_the_diagonal_of_box_iou():
    g = torch.Generator().manual_seed(0)
    a, b = _boxes(20, g), _boxes(20, g)
    b[0] = torch.tensor([100.0, 100.0, 110.0, 105.0])  # disjoint from a[0]
    torch.testing.assert_close(L.paired_iou(a, b), box_iou(a, b).diagonal())
    assert L.paired_iou(a[:1], b[:1]).item() == 0.0


def test_pack_and_unpack_targets_round_trip():
    g = torch.Generator().manual_seed(1)
    boxes, labels = _boxes(5, g), torch.tensor([0, 3, 1, 2, 9])
    y = L.pack_targets(labels, boxes, size=50)
    assert y.shape == (5, 5) and y.dtype == torch.float32
    lab, cxcywh = L.unpack_targets(y)
    assert torch.equal(lab, labels)
    torch.testing.assert_close(box_convert(cxcywh * 50, "cxcywh", "xyxy"), boxes)


def test_backbone_body_drops_pool_and_head():
    body = L.backbone_body(small_cnn(10, width=4))
    assert body(torch.zeros(2, 3, 32, 32)).shape == (2, 16, 4, 4)
    resnet_body = L.backbone_body(torchvision.models.resnet18())
    assert resnet_body(torch.zeros(1, 3, 64, 64)).shape == (1, 512, 2, 2)
    with pytest.raises(ValueError, match="AdaptiveAvgPool2d"):
        L.backbone_body(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)))


def test_network_output_layout():
    torch.manual_seed(0)
    net = L.LocalizationNet(L.backbone_body(small_cnn(10, width=4)), 16, num_classes=7, grid=2)
    out = net(torch.randn(3, 3, 32, 32))
    scores, box = L.split_output(out)
    assert out.shape == (3, 11) and scores.shape == (3, 7)
    assert ((box > 0) & (box < 1)).all()  # sigmoid fractions of the image side


def test_multitask_loss_is_ce_plus_lambda_times_summed_l1():
    g = torch.Generator().manual_seed(2)
    scores, labels = torch.randn(4, 5, generator=g), torch.tensor([0, 4, 2, 2])
    boxes, true = torch.rand(4, 4, generator=g), torch.rand(4, 4, generator=g)
    ref = F.cross_entropy(scores, labels) + 0.7 * F.l1_loss(boxes, true, reduction="sum") / 4
    torch.testing.assert_close(L.multitask_loss(scores, boxes, labels, true, 0.7), ref)


def test_task_loss_metrics_and_checks():
    task = L.Localization(lam=2.0)
    g = torch.Generator().manual_seed(3)
    y = L.pack_targets(torch.tensor([1, 0]), _boxes(2, g), 40)
    perfect = torch.cat([torch.tensor([[-5.0, 5.0], [5.0, -5.0]]), y[:, 1:]], 1)  # right classes, true boxes
    loss = task.default_loss()(perfect, y)
    torch.testing.assert_close(loss, F.cross_entropy(perfect[:, :2], torch.tensor([1, 0])))
    metrics = task.default_metrics()
    assert metrics["acc"](perfect, y).item() == 1.0
    torch.testing.assert_close(metrics["iou"](perfect, y), torch.tensor(1.0))
    shifted = perfect.clone()
    shifted[:, 2] += shifted[:, 4] / 3  # move every box down by a third of its height: IoU 0.5
    torch.testing.assert_close(metrics["iou"](shifted, y), torch.tensor(0.5))
    with pytest.raises(ValueError, match=r"\(N, C \+ 4\)"):
        task.check_output(torch.zeros(2, 3), torch.zeros(2, 5), None)


def test_fit_trains_the_box_head(one_thread):
    """A few epochs on a toy set where the box is a bright square: the train IoU must go up a lot."""
    g = torch.Generator().manual_seed(4)
    n, size = 64, 16
    images = torch.zeros(n, 3, size, size, dtype=torch.uint8)
    boxes = torch.zeros(n, 4)
    for i in range(n):
        x0, y0 = torch.randint(0, 9, (2,), generator=g).tolist()
        images[i, :, y0:y0 + 7, x0:x0 + 7] = 255
        boxes[i] = torch.tensor([x0, y0, x0 + 7, y0 + 7])
    y = L.pack_targets(torch.zeros(n, dtype=torch.long), boxes, size)
    torch.manual_seed(0)
    net = L.LocalizationNet(L.backbone_body(small_cnn(2, width=4)), 16, num_classes=2, grid=2)
    hist = fit(net, TensorLoader(images, y, 16, seed=0), epochs=12, lr=0.05, task=L.Localization(1.0), quiet=True,
               seed=0)
    assert hist["train_iou"][-1] > 0.6 > hist["train_iou"][0] + 0.1


def test_box_tensors_resizes_images_and_boxes():
    class Two(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            image = tv_tensors.Image(torch.full((3, 20, 10), 50 * i, dtype=torch.uint8))
            box = tv_tensors.BoundingBoxes(torch.tensor([[2.0, 4.0, 6.0, 10.0]]), format="XYXY", canvas_size=(20, 10))
            return image, {"boxes": box, "labels": torch.tensor([i + 3])}

    x, labels, boxes = L.box_tensors(Two(), 8)
    assert x.shape == (2, 3, 8, 8) and x.dtype == torch.uint8 and x[1].float().mean() == 50
    assert labels.tolist() == [3, 4]
    torch.testing.assert_close(boxes[0], torch.tensor([1.6, 1.6, 4.8, 4.0]))  # x * 8/10, y * 8/20
    with pytest.raises(TypeError, match="pets_box"):
        L.box_tensors([(torch.zeros(3, 4, 4, dtype=torch.uint8), {"boxes": torch.zeros(1, 4)})], 4)


def test_box_head_any_map_size_and_the_network_uses_it():
    torch.manual_seed(0)
    head = L.BoxHead(8, grid=3, hidden=5)
    for h, w in ((2, 2), (6, 6), (11, 7)):
        out = head(torch.randn(2, 8, h, w) * 5)
        assert out.shape == (2, 4) and ((out > 0) & (out < 1)).all()
    assert sum(p.numel() for p in head.parameters()) == 8 * 5 + 5 + 5 * 9 * 4 + 4
    net = L.LocalizationNet(torch.nn.Identity(), 8, num_classes=3, grid=3, hidden=5)
    f = torch.randn(2, 8, 6, 6)
    torch.testing.assert_close(L.split_output(net(f))[1], net.box_head(f))
    assert isinstance(net.box_head, L.BoxHead)
