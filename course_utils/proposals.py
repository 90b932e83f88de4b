"""Region proposals in the style of Selective Search (Uijlings et al., IJCV 2013), small enough to read.

    segments = skimage.segmentation.felzenszwalb(image, scale=100, sigma=0.8, min_size=20)
    boxes, history = merge_regions(image, segments)      # every region of the hierarchy, as xyxy boxes
    boxes = selective_search(image)                       # both steps, duplicates removed

Step 1 over-segments the image into uniform regions (Felzenszwalb & Huttenlocher's graph-based
segmentation, from scikit-image). Step 2 groups them greedily: the two most similar *neighbouring*
regions merge, the merged region's similarity to its neighbours is computed, and so on until one region
covers the image. Every region met on the way, the first ones included, is a proposal (its bounding box).
Similarity here is the sum of the paper's colour, size and fill terms (its texture term is left out):

* colour: intersection of the two regions' colour histograms (25 bins per channel, L1-normalised);
* size: 1 - (size_i + size_j) / image size, so small regions merge first and grow evenly over the image;
* fill: 1 - (box_ij - size_i - size_j) / image size, so regions that fit each other's gaps merge early.

Images are uint8 H×W×3 (NumPy, as scikit-image); boxes are xyxy pixels (x1, y1 exclusive), torch float32.
"""
from __future__ import annotations

import heapq

import numpy as np
import torch

__all__ = ["region_stats", "neighbours", "similarity", "merge_regions", "regions_after", "selective_search",
           "proposal_recall", "random_windows"]

BINS = 25


def region_stats(image: np.ndarray, segments: np.ndarray) -> dict[int, dict]:
    """Per region label: ``size`` (pixels), ``box`` (x1, y1, x2, y2), ``hist`` (3·BINS colour bins, sum 1)."""
    labels, flat = np.unique(segments, return_inverse=True)  # flat: 0..R-1 per pixel
    flat = flat.reshape(-1)
    r, (h, w) = len(labels), segments.shape
    size = np.bincount(flat, minlength=r)
    ys, xs = np.divmod(np.arange(h * w), w)
    lo_x, lo_y = np.full(r, w), np.full(r, h)
    hi_x, hi_y = np.zeros(r, dtype=int), np.zeros(r, dtype=int)
    np.minimum.at(lo_x, flat, xs); np.minimum.at(lo_y, flat, ys)
    np.maximum.at(hi_x, flat, xs + 1); np.maximum.at(hi_y, flat, ys + 1)
    bins = (image.reshape(-1, 3).astype(np.int64) * BINS) // 256  # (H*W, 3) bin of each channel value
    hist = np.concatenate([np.bincount(flat * BINS + bins[:, c], minlength=r * BINS).reshape(r, BINS)
                           for c in range(3)], axis=1).astype(float)  # (R, 3*BINS)
    hist /= hist.sum(axis=1, keepdims=True)
    return {int(lab): {"size": int(size[k]), "box": (int(lo_x[k]), int(lo_y[k]), int(hi_x[k]), int(hi_y[k])),
                       "hist": hist[k]} for k, lab in enumerate(labels)}


def neighbours(segments: np.ndarray) -> set[tuple[int, int]]:
    """Pairs (i, j), i < j, of region labels that touch horizontally or vertically."""
    pairs = set()
    for a, b in ((segments[:, :-1], segments[:, 1:]), (segments[:-1], segments[1:])):
        diff = a != b
        lo, hi = np.minimum(a[diff], b[diff]), np.maximum(a[diff], b[diff])
        pairs.update(zip(lo.tolist(), hi.tolist()))
    return pairs


def _union(a: tuple, b: tuple) -> tuple:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def similarity(ri: dict, rj: dict, image_size: int) -> float:
    """Colour + size + fill similarity of two regions (each term in [0, 1])."""
    colour = np.minimum(ri["hist"], rj["hist"]).sum() / 3  # each channel's histogram sums to 1/3
    size = 1 - (ri["size"] + rj["size"]) / image_size
    x1, y1, x2, y2 = _union(ri["box"], rj["box"])
    fill = 1 - ((x2 - x1) * (y2 - y1) - ri["size"] - rj["size"]) / image_size
    return float(colour + size + fill)


def merge_regions(image: np.ndarray, segments: np.ndarray) -> tuple[torch.Tensor, list[tuple[int, int, int]]]:
    """Greedy hierarchical grouping: ``(boxes (R + merges, 4), history [(i, j, new label), ...])``.

    Boxes come in the order the regions appear: the initial segments, then each merged region. A heap
    holds the similarities of neighbouring pairs; pairs whose regions were merged away are skipped when popped.
    """
    regions = region_stats(image, segments)
    n_pixels = segments.size
    links = {r: set() for r in regions}
    heap = []
    for i, j in neighbours(segments):
        links[i].add(j)
        links[j].add(i)
        heapq.heappush(heap, (-similarity(regions[i], regions[j], n_pixels), i, j))
    boxes = [regions[r]["box"] for r in sorted(regions)]
    history, alive, new = [], set(regions), max(regions) + 1
    while heap:
        _, i, j = heapq.heappop(heap)
        if i not in alive or j not in alive:
            continue  # one of the two was merged already
        ri, rj = regions[i], regions[j]
        size = ri["size"] + rj["size"]
        regions[new] = {"size": size, "box": _union(ri["box"], rj["box"]),
                        "hist": (ri["hist"] * ri["size"] + rj["hist"] * rj["size"]) / size}
        alive -= {i, j}
        links[new] = (links.pop(i) | links.pop(j)) - {i, j}
        for k in links[new]:
            links[k] -= {i, j}
            links[k].add(new)
            heapq.heappush(heap, (-similarity(regions[new], regions[k], n_pixels), k, new))
        alive.add(new)
        history.append((i, j, new))
        boxes.append(regions[new]["box"])
        new += 1
    return torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), history


def regions_after(segments: np.ndarray, history: list[tuple[int, int, int]], k: int) -> np.ndarray:
    """The segmentation after the first ``k`` merges of ``history``: (H, W) region labels."""
    parent = {}
    for i, j, new in history[:k]:
        parent[i] = parent[j] = new
    labels = np.unique(segments)
    root = {}
    for r in labels.tolist():
        top = r
        while top in parent:
            top = parent[top]
        root[r] = top
    return np.vectorize(root.get)(segments) if len(labels) else segments.copy()


def selective_search(image: np.ndarray, scale: float = 100, sigma: float = 0.8,
                     min_size: int = 20) -> torch.Tensor:
    """Felzenszwalb segmentation, then :func:`merge_regions`; duplicate boxes removed (first kept)."""
    from skimage.segmentation import felzenszwalb

    segments = felzenszwalb(image, scale=scale, sigma=sigma, min_size=min_size)
    boxes, _ = merge_regions(image, segments)
    _, first = np.unique(boxes.numpy(), axis=0, return_index=True)
    return boxes[np.sort(first)]


def proposal_recall(proposals: list[torch.Tensor], gt_boxes: list[torch.Tensor], iou: float = 0.5) -> float:
    """Fraction of ground-truth boxes (all images) that a proposal of their image overlaps by >= ``iou``."""
    from torchvision.ops import box_iou

    found = total = 0
    for p, g in zip(proposals, gt_boxes):
        total += len(g)
        if len(g) and len(p):
            found += int((box_iou(g.float(), p.float()).max(dim=1).values >= iou).sum())
    return found / total if total else float("nan")


def random_windows(k: int, height: int, width: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``k`` windows (k, 4) xyxy drawn uniformly from all the windows of a ``height`` × ``width`` image.

    A window is a choice of two distinct vertical edges among the ``width + 1`` and two horizontal ones
    among the ``height + 1``, so every window is equally likely (not every position and size).
    """
    xs = torch.stack([torch.randperm(width + 1, generator=generator)[:2].sort().values for _ in range(k)])
    ys = torch.stack([torch.randperm(height + 1, generator=generator)[:2].sort().values for _ in range(k)])
    return torch.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], dim=1).float()  # (k, 4)
