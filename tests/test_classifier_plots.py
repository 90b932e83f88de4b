"""course_utils.classifier_plots: templates as images, confusion-matrix and decision-boundary plots."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from course_utils import classifier_plots as cp


def test_template_images_scale_each_row_to_0_1_in_nchw_order():
    w = torch.arange(2 * 12, dtype=torch.float32).reshape(2, 12)
    w[1] = -w[1]  # the second template runs downwards
    imgs = cp.template_images(w, (3, 2, 2))
    assert imgs.shape == (2, 3, 2, 2)
    # row 0 is 0..11: red plane = first 4 values, scaled by (v - 0) / 11
    assert torch.allclose(imgs[0, 0].flatten(), torch.tensor([0, 1, 2, 3]) / 11)
    assert torch.allclose(imgs[0, 2].flatten(), torch.tensor([8, 9, 10, 11]) / 11)
    # row 1 is -12..-23: its largest value (-12) maps to 1, its smallest (-23) to 0
    assert imgs[1, 0, 0, 0] == 1 and imgs[1, 2, 1, 1] == 0
    # flattening an image batch the usual way and back gives the same layout
    batch = torch.rand(4, 3, 5, 5)
    back = cp.template_images(batch.reshape(4, -1), (3, 5, 5))
    lo = batch.amin(dim=(1, 2, 3), keepdim=True)
    hi = batch.amax(dim=(1, 2, 3), keepdim=True)
    assert torch.allclose(back, (batch - lo) / (hi - lo))


def test_template_images_constant_row_and_bad_shape():
    imgs = cp.template_images(torch.ones(1, 12), (3, 2, 2))
    assert torch.isfinite(imgs).all() and (imgs == 0).all()
    with pytest.raises(ValueError, match="needs"):
        cp.template_images(torch.ones(2, 10), (3, 2, 2))


def test_show_templates_draws_one_titled_image_per_class():
    fig = cp.show_templates(torch.randn(3, 48), ["a", "b", "c"], shape=(3, 4, 4), ncols=2)
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in titled] == ["a", "b", "c"]
    shown = titled[1].images[0].get_array()
    assert shown.shape == (4, 4, 3) and 0 <= shown.min() and shown.max() <= 1
    with pytest.raises(ValueError, match="class names"):
        cp.show_templates(torch.randn(3, 48), ["a", "b"], shape=(3, 4, 4))


def test_plot_confusion_normalises_rows():
    import matplotlib.pyplot as plt

    cm = torch.tensor([[3, 1], [0, 4]])
    ax = cp.plot_confusion(cm, ["cat", "dog"])
    shown = np.asarray(ax.images[0].get_array())
    assert np.allclose(shown, [[0.75, 0.25], [0.0, 1.0]])
    assert [t.get_text() for t in ax.texts] == ["0.75", "0.25", "0.00", "1.00"]
    ax2 = cp.plot_confusion(cm, ["cat", "dog"], normalize=False)
    assert np.allclose(np.asarray(ax2.images[0].get_array()), cm.numpy())
    with pytest.raises(ValueError, match="square"):
        cp.plot_confusion(torch.ones(2, 3), ["a", "b"])
    plt.close("all")


def test_decision_grid_matches_the_rule_at_every_grid_point():
    rule = lambda p: (p[:, 0] + 2 * p[:, 1] > 0.5).long()  # a line: x + 2y = 0.5
    xx, yy, zz = cp.decision_grid(rule, (-1, 1), (-2, 2), resolution=31)
    assert xx.shape == yy.shape == zz.shape == (31, 31)
    assert xx[0, 0] == -1 and xx[0, -1] == 1 and yy[0, 0] == -2 and yy[-1, 0] == 2
    assert np.array_equal(zz, (xx + 2 * yy > 0.5).astype(zz.dtype))
    # scores (M, K) give their argmax
    scores = lambda p: torch.stack([p[:, 0], -p[:, 0]], dim=1)
    _, _, z2 = cp.decision_grid(scores, (-1, 1), (-1, 1), resolution=5)
    assert (z2[:, :2] == 1).all() and (z2[:, 3:] == 0).all()
    with pytest.raises(ValueError, match="one label per point"):
        cp.decision_grid(lambda p: torch.zeros(3), (0, 1), (0, 1), resolution=4)


def test_plot_decision_boundary_scatters_points_and_draws_regions():
    import matplotlib.pyplot as plt

    pts = torch.randn(50, 2)
    lab = (pts[:, 0] > 0).long()
    ax = cp.plot_decision_boundary(lambda p: (p[:, 0] > 0).long(), pts, lab, resolution=40, title="t",
                                    axis_labels=("r", "θ"))
    assert ax.get_title() == "t" and ax.get_xlabel() == "r" and ax.get_ylabel() == "θ"
    assert len(ax.collections[-1].get_offsets()) == 50  # the scatter is on top
    x0, x1 = ax.get_xlim()
    assert x0 <= pts[:, 0].min().item() and x1 >= pts[:, 0].max().item()
    plt.close("all")
