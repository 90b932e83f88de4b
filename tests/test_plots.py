"""show_grid / show_dataset draw one panel per image with its labels, boxes and masks."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

import course_utils  # noqa: E402
from course_utils.data import get_dataset, load_tensors  # noqa: E402
from course_utils.plots import show_dataset, show_grid, to_hwc  # noqa: E402


@pytest.fixture(scope="module")
def cfg():
    return course_utils.setup("smoke", 0, quiet=True)


def _images(fig):
    return [ax for ax in fig.axes if ax.images]


def test_classification_grid(cfg):
    s = load_tensors("cifar10", "test", cfg, limit=10)
    fig = show_grid(s.images, s.labels, s.classes, ncols=4)
    assert len(fig.axes) == 12 and len(_images(fig)) == 10
    assert fig.axes[0].get_title() == s.classes[s.labels[0]]
    plt.close(fig)


def test_to_hwc_layouts():
    chw = torch.arange(2 * 3 * 4, dtype=torch.uint8).reshape(3, 2, 4)
    out = to_hwc(chw)
    assert out.shape == (2, 4, 3) and np.isclose(out[0, 1, 2], chw[2, 0, 1].item() / 255)
    norm = torch.tensor([[-2.0, 0.0], [1.0, 2.0]]).expand(3, 2, 2)
    assert to_hwc(norm, mean=(0.5,) * 3, std=(0.25,) * 3)[0, 0, 0] == 0.0  # -2 * .25 + .5 clipped


def test_detection_boxes_drawn(cfg):
    ds = get_dataset("voc_det", "train", cfg)
    fig = show_dataset(ds, n=4)
    n_boxes = sum(len(ds[i][1]["boxes"]) for i in range(4))
    assert n_boxes > 0 and sum(isinstance(p, Rectangle) for ax in fig.axes for p in ax.patches) == n_boxes
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert ds.classes[int(ds[0][1]["labels"][0])] in texts
    plt.close(fig)


@pytest.mark.parametrize("name,split", [("voc_seg", "val"), ("coco_det", "val"), ("pets_seg", "test")])
def test_masks_overlaid(name, split, cfg):
    ds = get_dataset(name, split, cfg)
    fig = show_dataset(ds, n=3)
    panels = _images(fig)
    assert len(panels) == 3
    for i, ax in enumerate(panels):
        assert len(ax.images) == 2  # picture + mask layer
        target = ds[i][1]
        mask = np.asarray(target["masks"] if isinstance(target, dict) else target)  # (H, W) or (K, H, W)
        labelled = (mask > 0).any(0) if mask.ndim == 3 else mask > 0
        alpha = np.asarray(ax.images[1].get_array())[..., 3]  # the overlay is opaque exactly where labelled
        assert labelled.any() and np.array_equal(alpha > 0, labelled)
    plt.close(fig)


def test_mask_outlines_follow_each_class():
    mask = torch.zeros(12, 12, dtype=torch.long)
    mask[2:6, 2:6], mask[7:11, 6:10], mask[0, :] = 1, 2, 255   # two classes and a void row
    fig = show_grid(torch.zeros(1, 3, 12, 12, dtype=torch.uint8), masks=[mask], mask_style="outline")
    ax = fig.axes[0]
    assert len(ax.images) == 1  # no tint layer: one contour set per class instead
    lines = [seg for col in ax.collections for path in col.get_paths() for seg in [path.vertices]]
    boxes = sorted((v[:, 0].min(), v[:, 1].min(), v[:, 0].max(), v[:, 1].max()) for v in lines)
    assert np.allclose(boxes, [(1.5, 1.5, 5.5, 5.5), (5.5, 6.5, 9.5, 10.5)])  # half a pixel outside each square
    plt.close(fig)
    with pytest.raises(ValueError, match="mask_style"):
        show_grid(torch.zeros(1, 3, 4, 4), masks=[torch.zeros(4, 4)], mask_style="dots")


def test_captions_as_titles(cfg):
    ds = get_dataset("captions", "val", cfg)
    fig = show_dataset(ds, n=2)
    assert fig.axes[0].get_title().startswith(ds[0][1][0])
    plt.close(fig)


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="labels has 1 entries for 2 images"):
        show_grid(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), labels=[0])


def test_draw_boxes_outlines_each_box_with_its_text():
    from course_utils.plots import draw_boxes

    fig, ax = plt.subplots()
    image = torch.zeros(3, 40, 60, dtype=torch.uint8)
    draw_boxes(ax, image, torch.tensor([[5.0, 5, 20, 30], [30, 10, 50, 35]]), "red", texts=["a", "b"], title="t")
    rects = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert [(r.get_x(), r.get_y(), r.get_width(), r.get_height()) for r in rects] == [(5, 5, 15, 25), (30, 10, 20, 25)]
    assert [t.get_text() for t in ax.texts] == ["a", "b"] and ax.get_title() == "t"
    assert ax.get_xlim() == (0, 60) and ax.get_ylim() == (40, 0)  # y grows downwards, as in images
    draw_boxes(ax, torch.rand(8, 8))  # a heatmap, no boxes
    plt.close(fig)


def test_pr_curve_draws_precision_and_its_envelope():
    from course_utils.plots import pr_curve

    fig, ax = plt.subplots()
    pr_curve(ax, [0.5, 0.9, 0.7], [True, True, False], 4, title="c")  # best first: TP, FP, TP
    precision, envelope = (line.get_ydata() for line in ax.get_lines())
    assert np.allclose(ax.get_lines()[0].get_xdata(), [0.25, 0.25, 0.5])
    assert np.allclose(precision, [1, 0.5, 2 / 3]) and np.allclose(envelope, [1, 2 / 3, 2 / 3])
    assert ax.get_title() == "c"
    plt.close(fig)


def test_heatmap_panels_one_column_per_image():
    from course_utils.plots import heatmap_panels

    images = torch.zeros(2, 3, 16, 16, dtype=torch.uint8)
    truths = [{"boxes": torch.tensor([[2.0, 2, 8, 8]])}, {"boxes": torch.zeros(0, 4)}]
    dets = [{"boxes": torch.tensor([[1.0, 1, 7, 9]]), "labels": torch.tensor([2]), "scores": torch.tensor([0.8])},
            {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64), "scores": torch.zeros(0)}]
    fig = heatmap_panels(images, truths, dets, torch.rand(2, 4, 4), torch.rand(2, 4, 4), ["a", "b"])
    assert len(fig.axes) == 6 and len(_images(fig)) == 6
    assert [t.get_text() for t in fig.axes[0].texts] == ["b 0.80"]
    assert len([p for p in fig.axes[0].patches if isinstance(p, Rectangle)]) == 2
    plt.close(fig)


def test_cost_accuracy_colours_one_stage():
    from course_utils.plots import cost_accuracy

    fig = cost_accuracy({"fcos_x": (100.0, 40.0), "fasterrcnn_y_fpn": (200.0, 45.0)}, one_stage=("fcos",))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["fcos_x", "frcnn_y"] and ax.get_xscale() == "log"
    plt.close(fig)
