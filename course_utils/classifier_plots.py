"""Plots that look inside classifiers: weight templates, confusion matrices, decision boundaries.

For pictures of the data itself (grids of images with labels, boxes and masks) use
:mod:`course_utils.plots`.

Layouts:
* templates come from a linear layer's weight (C, D) where D = channels·H·W in NCHW order, i.e. the
  order ``images.reshape(N, -1)`` gives for (N, 3, H, W) images (all red values, then green, then blue);
* confusion matrices are C×C counts, rows = true class, columns = predicted class (as
  ``course_utils.metrics.confusion_matrix``);
* decision boundaries are for points in a plane, float (N, 2).

Every function returns the matplotlib Figure or Axes it drew on; nothing is shown or saved here.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

__all__ = ["template_images", "show_templates", "plot_confusion", "decision_grid", "plot_decision_boundary"]


def template_images(weight: torch.Tensor, shape: Sequence[int] = (3, 32, 32)) -> torch.Tensor:
    """Rows of a weight (C, D) as images (C, *shape) in [0, 1], each stretched over its own min..max."""
    w = torch.as_tensor(weight).detach().float().cpu()
    if w.ndim != 2 or w.shape[1] != int(np.prod(shape)):
        raise ValueError(f"weight has shape {tuple(w.shape)} but shape {tuple(shape)} needs (C, {int(np.prod(shape))}): "
                         "pass the layer's weight (classes × flattened pixels) and the image shape C×H×W.")
    lo = w.min(dim=1, keepdim=True).values
    hi = w.max(dim=1, keepdim=True).values
    scaled = (w - lo) / (hi - lo).clamp_min(1e-12)  # a constant row becomes all zeros, not NaN
    return scaled.reshape(len(w), *shape)  # (C, channels, H, W)


def show_templates(weight: torch.Tensor, classes: Sequence[str], shape: Sequence[int] = (3, 32, 32),
                   ncols: int = 10, size: float = 1.5):
    """A Figure with one image per class: the linear classifier's template (weight row) for it."""
    import matplotlib.pyplot as plt

    images = template_images(weight, shape)
    if len(classes) != len(images):
        raise ValueError(f"{len(images)} templates but {len(classes)} class names: pass one name per weight row.")
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * (size + 0.3)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, im, name in zip(axes.flat, images, classes):
        ax.imshow(im.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray" if im.shape[0] == 1 else None)  # (H, W, C)
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    plt.close(fig)  # the notebook shows the returned figure once
    return fig


def plot_confusion(cm: torch.Tensor, classes: Sequence[str], normalize: bool = True, ax=None,
                   title: str | None = None):
    """Draw a confusion matrix (rows = true class); ``normalize`` shows each row as fractions of that class."""
    import matplotlib.pyplot as plt

    m = torch.as_tensor(cm).double().cpu()
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] != len(classes):
        raise ValueError(f"confusion matrix has shape {tuple(m.shape)} for {len(classes)} classes: "
                         "expected a square C×C matrix with one class name per row.")
    if normalize:
        m = m / m.sum(dim=1, keepdim=True).clamp_min(1)
    if ax is None:
        n = len(classes)
        _, ax = plt.subplots(figsize=(1.5 + 0.55 * n, 1.2 + 0.5 * n))
    ax.imshow(m.numpy(), cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ticks = range(len(classes))
    ax.set_xticks(ticks, classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(ticks, classes, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if len(classes) <= 12:  # numbers stay readable up to about a dozen classes
        top = m.max().item() or 1.0
        for i in ticks:
            for j in ticks:
                v = m[i, j].item()
                ax.text(j, i, f"{v:.2f}" if normalize else f"{v:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if v > 0.6 * top else "black")
    ax.set_title(title or ("confusion matrix (rows sum to 1)" if normalize else "confusion matrix (counts)"))
    ax.figure.tight_layout()
    return ax


def decision_grid(predict: Callable[[torch.Tensor], torch.Tensor], xlim: tuple[float, float],
                  ylim: tuple[float, float], resolution: int = 200):
    """Class of every point of a resolution×resolution grid: returns (xx, yy, labels), each (res, res) numpy.

    ``predict`` maps float (M, 2) points to labels (M,) or to scores (M, K), whose argmax is taken.
    """
    xs = torch.linspace(*xlim, resolution)
    ys = torch.linspace(*ylim, resolution)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")  # row i has y = ys[i]
    points = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)  # (res*res, 2)
    with torch.no_grad():
        out = torch.as_tensor(predict(points))
    if out.ndim == 2:
        out = out.argmax(dim=1)
    if out.shape != (len(points),):
        raise ValueError(f"predict returned shape {tuple(out.shape)} for {len(points)} points: "
                         "return one label per point (M,) or scores (M, K).")
    return xx.numpy(), yy.numpy(), out.reshape(resolution, resolution).cpu().numpy()


def plot_decision_boundary(predict: Callable[[torch.Tensor], torch.Tensor], points: torch.Tensor,
                           labels: torch.Tensor, ax=None, resolution: int = 200, margin: float = 0.1,
                           title: str | None = None, axis_labels: tuple[str, str] = ("$x_1$", "$x_2$")):
    """Colour the plane by ``predict``'s class and scatter the labelled points (N, 2) on top."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    p = torch.as_tensor(points).float().cpu()
    y = torch.as_tensor(labels).cpu()
    lo, hi = p.min(dim=0).values, p.max(dim=0).values
    pad = margin * (hi - lo).clamp_min(1e-6)
    xx, yy, zz = decision_grid(predict, (lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1]),
                               resolution)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 4))
    k = int(max(zz.max(), y.max().item())) + 1
    colours = plt.get_cmap("tab10").colors[:k]
    ax.contourf(xx, yy, zz, levels=np.arange(k + 1) - 0.5, cmap=ListedColormap(colours), alpha=0.25)
    ax.contour(xx, yy, zz, levels=np.arange(k) + 0.5, colors="k", linewidths=1)  # the boundary itself
    ax.scatter(p[:, 0].numpy(), p[:, 1].numpy(), c=[colours[int(c)] for c in y], s=8, edgecolors="none")
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    if title:
        ax.set_title(title, fontsize=10)
    return ax
