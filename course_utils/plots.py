"""Plots of images: grids of images with labels, boxes and masks, for any dataset of the course.

For plots that look inside a classifier (weight templates, confusion matrices, decision boundaries)
use :mod:`course_utils.classifier_plots`.

    show_grid(batch.images, labels=batch.labels, classes=batch.classes)       # classification
    show_grid(images, labels=[t["labels"] for t in targets], boxes=[t["boxes"] for t in targets])
    show_dataset(get_dataset("voc_seg", "train", cfg), n=8)                  # picks the right overlay
    draw_boxes(ax, image, boxes, "lime", texts=names)                          # boxes on one given axis
    pr_curve(ax, scores, is_tp, n_true)                                        # one class's PR curve + envelope
    heatmap_panels(images, targets, detections, target_heat, predicted_heat, names)  # a one-stage detector
    cost_accuracy({"fcos_resnet50_fpn": (128.2, 39.2)}, one_stage=("fcos",))    # detectors' mAP against GFLOPs

Images may be uint8 or float, (N, 3, H, W) tensors, lists of (3, H, W) tensors of different sizes,
HWC numpy arrays or PIL images; boxes are xyxy pixels; masks are (H, W) class indices (255 = void,
drawn white) or (K, H, W) instance masks. A function that makes a figure returns it; those given an
``ax`` draw on it.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["show_grid", "show_dataset", "draw_boxes", "to_hwc", "image_is_uint8", "pr_curve", "heatmap_panels",
           "cost_accuracy"]


def to_hwc(image, mean=None, std=None) -> np.ndarray:
    """Any image (CHW/HWC tensor or array, PIL, uint8 or float, maybe normalised) -> float HWC in [0, 1]."""
    if hasattr(image, "convert") and not hasattr(image, "shape"):  # PIL
        image = np.asarray(image.convert("RGB"))
    x = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim == 3 and x.shape[0] in (1, 3) and x.shape[-1] not in (1, 3):
        x = x.transpose(1, 2, 0)  # CHW -> HWC
    x = x.astype(np.float64)
    if mean is not None and std is not None:
        x = x * np.asarray(std) + np.asarray(mean)
    elif image_is_uint8(image):
        x = x / 255
    elif x.min() < 0 or x.max() > 1:  # normalised without stats given: stretch for display
        x = (x - x.min()) / max(x.max() - x.min(), 1e-8)
    x = np.clip(x, 0, 1)
    return np.repeat(x, 3, axis=2) if x.shape[2] == 1 else x


def image_is_uint8(image) -> bool:
    """True for uint8 arrays/tensors and PIL images (shown as 0..255)."""
    dtype = getattr(image, "dtype", None)
    return str(dtype) in ("uint8", "torch.uint8") or (dtype is None and hasattr(image, "convert"))


def _name(label, classes) -> str:
    label = label.item() if hasattr(label, "item") else label
    if isinstance(label, str):
        return label
    return str(classes[int(label)]) if classes is not None and 0 <= int(label) < len(classes) else str(label)


def _index_map(mask) -> np.ndarray:
    """(H, W) class indices, or (K, H, W) instance masks turned into an index map 1..K; int64 numpy."""
    m = mask.detach().cpu().numpy() if hasattr(mask, "detach") else np.asarray(mask)
    if m.ndim == 3:  # instances (K, H, W) -> index map 1..K
        index = np.zeros(m.shape[1:], dtype=np.int64)
        for k in range(m.shape[0]):
            index[m[k] > 0] = k + 1
        m = index
    return m.astype(np.int64)


def _overlay(ax, mask) -> None:
    from .data.voc import voc_palette

    m = _index_map(mask)
    pal = np.array(voc_palette(), dtype=np.float64).reshape(256, 3) / 255
    rgba = np.zeros((*m.shape, 4))
    rgba[..., :3] = pal[np.clip(m, 0, 255)]
    rgba[m == 255, :3] = 1.0
    rgba[..., 3] = np.where(m > 0, 0.55, 0.0)
    ax.imshow(rgba, interpolation="nearest")


_OUTLINE = ("#ffe119", "#42d4f4", "#f032e6", "#3cb44b", "#ff7f00", "#ffffff", "#e6194b", "#4363d8")


def _outline(ax, mask) -> None:
    """Each class's (1..254) boundary as a bright line with a black halo: readable on any image colour."""
    import matplotlib.patheffects as pe

    m = _index_map(mask)
    for c in np.unique(m):
        if 0 < c < 255:
            ax.contour(m == c, levels=[0.5], colors=[_OUTLINE[(c - 1) % len(_OUTLINE)]], linewidths=1.4,
                       path_effects=[pe.Stroke(linewidth=3, foreground="black"), pe.Normal()])


def show_grid(images, labels=None, classes=None, boxes=None, masks=None, ncols: int = 8,
              mean=None, std=None, size: float = 1.6, mask_style: str = "fill"):
    """Grid of images with optional titles (labels/captions), xyxy boxes (+ their labels) and mask overlays.

    ``mask_style``: "fill" tints each class's pixels with its VOC colour (void white); "outline" draws
    each class's boundary instead, which stays readable when the tint and the object share a colour.
    """
    if mask_style not in ("fill", "outline"):
        raise ValueError(f"mask_style={mask_style!r}: use 'fill' or 'outline'")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    images = list(images)
    n = len(images)
    if n == 0:
        raise ValueError("show_grid needs at least one image")
    for what, seq in (("labels", labels), ("boxes", boxes), ("masks", masks)):
        if seq is not None and len(seq) != n:
            raise ValueError(f"{what} has {len(seq)} entries for {n} images: give one per image")
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * (1.15 if labels is not None else 1)),
                             squeeze=False)
    palette = plt.get_cmap("tab10")
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(to_hwc(images[i], mean, std), interpolation="nearest")
        if masks is not None and masks[i] is not None:
            (_overlay if mask_style == "fill" else _outline)(ax, masks[i])
        lab = labels[i] if labels is not None else None
        if boxes is not None and boxes[i] is not None:
            b = boxes[i].detach().cpu().numpy() if hasattr(boxes[i], "detach") else np.asarray(boxes[i])
            for k, (x0, y0, x1, y1) in enumerate(b.reshape(-1, 4)):
                colour = palette(k % 10)
                ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=1.5, ec=colour))
                if lab is not None and k < len(lab):
                    ax.text(x0, y0, _name(lab[k], classes), fontsize=6, color="white", va="bottom",
                            bbox={"facecolor": colour, "pad": 1, "lw": 0})
        elif lab is not None:
            text = "\n".join(lab[:2]) if isinstance(lab, (list, tuple)) else _name(lab, classes)
            ax.set_title(text, fontsize=7 if len(text) < 30 else 5)
    fig.tight_layout()
    return fig


def show_dataset(dataset, n: int = 16, ncols: int = 8, classes=None, mean=None, std=None):
    """Show the first ``n`` samples of any course dataset, choosing labels/boxes/masks from the sample type."""
    samples = [dataset[i] for i in range(min(n, len(dataset)))]
    classes = classes if classes is not None else getattr(dataset, "classes", None)
    images = [s[0] for s in samples]
    targets = [s[1] for s in samples]
    first = targets[0]
    if isinstance(first, dict):
        return show_grid(images, labels=[t["labels"] for t in targets], classes=classes,
                         boxes=[t["boxes"] for t in targets], masks=[t.get("masks") for t in targets],
                         ncols=ncols, mean=mean, std=std)
    if hasattr(first, "ndim") and first.ndim >= 2:
        return show_grid(images, masks=targets, ncols=ncols, mean=mean, std=std)
    return show_grid(images, labels=targets, classes=classes, ncols=ncols, mean=mean, std=std)


def draw_boxes(ax, image, boxes=(), colour: str = "lime", lw: float = 1.5, ls: str = "-", title=None,
               texts=()) -> None:
    """Show one image (C, H, W tensor, or a 2-D map) on ``ax`` and outline xyxy pixel boxes, a text per box."""
    import torch
    from matplotlib.patches import Rectangle

    if image.ndim == 3 and image.shape[0] == 3:
        ax.imshow(to_hwc(image))
    else:
        ax.imshow(image.detach().cpu().numpy() if hasattr(image, "detach") else image)
    for k, (x1, y1, x2, y2) in enumerate(torch.as_tensor(boxes).reshape(-1, 4).tolist()):
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=colour, lw=lw, ls=ls))
        if k < len(texts):
            ax.text(x1, y1, texts[k], fontsize=7, color="black", va="bottom", bbox={"fc": colour, "pad": 1, "lw": 0})
    ax.set(xlim=(0, image.shape[-1]), ylim=(image.shape[-2], 0), title=title)
    ax.axis("off")


def pr_curve(ax, scores, is_tp, n_true: int, title=None) -> None:
    """One class's precision-recall curve on ``ax``: precision after each detection (best score first) against
    recall = TP / ``n_true``, and its upper envelope (the best precision at that recall or beyond), whose area
    is the all-point interpolated AP (``metrics.average_precision``)."""
    scores, is_tp = np.asarray(scores, dtype=float), np.asarray(is_tp, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    tp, fp = np.cumsum(is_tp[order]), np.cumsum(~is_tp[order])
    precision = tp / np.maximum(tp + fp, 1)
    ax.plot(tp / n_true, precision, label="precision")
    ax.plot(tp / n_true, np.maximum.accumulate(precision[::-1])[::-1], "--", label="envelope")
    ax.set(xlabel="recall", ylabel="precision", title=title, ylim=(0, 1.05))
    ax.legend(); ax.grid(alpha=0.3)


def heatmap_panels(images, truths, detections, target_heat, predicted_heat, names, size: float = 2.0):
    """A one-stage detector at work, one column per image: the image with its true boxes (white) and the
    decoded ``detections`` (lime, "name score"; labels count from 1, ``names[label - 1]``), the target
    centre heatmap, and the predicted one (both in [0, 1], same colour scale). Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, len(images), figsize=(size * len(images), 3.2 * size), squeeze=False)
    for k, (image, truth, d) in enumerate(zip(images, truths, detections)):
        draw_boxes(axes[0, k], image, truth["boxes"], "white", 1)
        draw_boxes(axes[0, k], image, d["boxes"], "lime", 1.2,
                   texts=[f"{names[l - 1]} {s:.2f}" for l, s in zip(d["labels"].tolist(), d["scores"].tolist())])
        for row, heat in ((1, target_heat[k]), (2, predicted_heat[k])):
            axes[row, k].imshow(np.asarray(heat.detach().cpu() if hasattr(heat, "detach") else heat),
                                cmap="magma", vmin=0, vmax=1)
            axes[row, k].axis("off")
    axes[1, 0].set_title("target heatmap", fontsize=9, loc="left")
    axes[2, 0].set_title("predicted heatmap", fontsize=9, loc="left")
    fig.tight_layout()
    return fig


def cost_accuracy(points: dict, one_stage=(), title=None, nudge=None):
    """Detectors' accuracy against their cost: ``points`` maps a name to (GFLOPs per image, box mAP in %);
    names starting with a prefix in ``one_stage`` are orange, the others (two-stage) blue; x on a log
    scale. ``nudge`` maps a name to a label offset in points (for labels that would overlap). Returns the figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, (gflops, box_map) in points.items():
        ax.scatter(gflops, box_map, c="tab:orange" if name.startswith(tuple(one_stage)) else "tab:blue")
        ax.annotate(name.replace("_fpn", "").replace("fasterrcnn_", "frcnn_"), (gflops, box_map), fontsize=7,
                    xytext=(nudge or {}).get(name, (5, 2)), textcoords="offset points")
    ax.scatter([], [], c="tab:orange", label="one-stage"); ax.scatter([], [], c="tab:blue", label="two-stage")
    ax.set(xscale="log", xlim=(0.3, 3000), xlabel="GFLOPs per image (log scale)",
           ylabel="box mAP@[.5:.95], COCO val2017 (%)", title=title)
    ax.legend(); ax.grid(alpha=0.3); fig.tight_layout()
    return fig
