"""course_utils.proposals on hand-made label maps and images whose right proposals are known."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from course_utils.proposals import (merge_regions, neighbours, proposal_recall, region_stats, regions_after,
                                    selective_search, similarity)


def _two_squares() -> tuple[np.ndarray, np.ndarray]:
    """A grey 40x40 image with a red square (x 5..15, y 5..15) and a blue one (x 25..35, y 20..35), and its labels."""
    image = np.full((40, 40, 3), 128, dtype=np.uint8)
    image[5:15, 5:15] = (220, 30, 30)
    image[20:35, 25:35] = (30, 30, 220)
    segments = np.zeros((40, 40), dtype=np.int64)
    segments[5:15, 5:15] = 1
    segments[20:35, 25:35] = 2
    return image, segments


def test_region_stats_sizes_boxes_and_histograms():
    image, segments = _two_squares()
    stats = region_stats(image, segments)
    assert stats[1]["size"] == 100 and stats[1]["box"] == (5, 5, 15, 15)
    assert stats[2]["size"] == 150 and stats[2]["box"] == (25, 20, 35, 35)
    assert stats[0]["size"] == 1600 - 250 and stats[0]["box"] == (0, 0, 40, 40)
    assert stats[1]["hist"].sum() == pytest.approx(1.0) and stats[1]["hist"].max() == pytest.approx(1 / 3)


def test_region_stats_match_a_per_region_count_with_numpy_histogram():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    segments = rng.integers(0, 50, (30, 40)) * 3  # labels need not be 0..R-1
    stats = region_stats(image, segments)
    assert sorted(stats) == sorted(np.unique(segments).tolist())
    for r, st in stats.items():
        m = segments == r
        ys, xs = np.nonzero(m)
        hist = np.concatenate([np.histogram(image[m][:, c], 25, (0, 256))[0] for c in range(3)]).astype(float)
        assert st["size"] == m.sum() and st["box"] == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        np.testing.assert_allclose(st["hist"], hist / hist.sum())


def test_neighbours_are_touching_pairs_only():
    labels = np.array([[0, 0, 1],
                       [2, 2, 1],
                       [2, 3, 3]])
    assert neighbours(labels) == {(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)}


def test_similarity_by_hand():
    a = {"size": 10, "box": (0, 0, 5, 2), "hist": np.array([1.0, 0, 0, 0, 1, 0]) / 3 * 1.5}
    b = {"size": 6, "box": (5, 0, 8, 2), "hist": np.array([0.5, 0.5, 0, 0, 1, 0]) / 3 * 1.5}
    # colour: sum of minima / 3 = (0.5 + 0 + 1) * 0.5 / 3; size: 1 - 16/100; fill: 1 - (16 - 16)/100
    assert similarity(a, b, 100) == pytest.approx(0.25 + 0.84 + 1.0)


def test_merging_builds_the_whole_hierarchy_and_finds_both_squares():
    image, segments = _two_squares()
    boxes, history = merge_regions(image, segments)
    assert len(history) == 2 and len(boxes) == 3 + 2  # R regions -> R - 1 merges, 2R - 1 boxes
    assert boxes[-1].tolist() == [0, 0, 40, 40]  # the last region is the whole image
    assert [5.0, 5, 15, 15] in boxes.tolist() and [25.0, 20, 35, 35] in boxes.tolist()
    final = regions_after(segments, history, len(history))
    assert len(np.unique(final)) == 1
    np.testing.assert_array_equal(regions_after(segments, history, 0), segments)


def test_greedy_order_merges_the_most_similar_neighbours_first():
    # three vertical stripes: two near-identical reds and a blue; the reds merge first
    image = np.zeros((10, 30, 3), dtype=np.uint8)
    image[:, :10] = (200, 20, 20)
    image[:, 10:20] = (205, 20, 20)
    image[:, 20:] = (20, 20, 200)
    segments = np.tile(np.repeat(np.arange(3), 10), (10, 1))  # (10, 30): labels 0 | 1 | 2
    _, history = merge_regions(image, segments)
    assert history[0][:2] == (0, 1)


def test_selective_search_finds_the_squares_without_duplicates():
    image, _ = _two_squares()
    boxes = selective_search(image, scale=100, min_size=5)
    assert len({tuple(b) for b in boxes.tolist()}) == len(boxes)
    assert proposal_recall([boxes], [torch.tensor([[5.0, 5, 15, 15], [25, 20, 35, 35]])], iou=0.9) == 1.0


def test_proposal_recall_counts_objects_over_images():
    gt = [torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]), torch.tensor([[0.0, 0, 4, 4]])]
    props = [torch.tensor([[0.0, 0, 10, 12]]), torch.zeros(0, 4)]  # IoU 100/120 with the first object
    assert proposal_recall(props, gt, iou=0.5) == pytest.approx(1 / 3)
    assert proposal_recall(props, gt, iou=0.9) == 0.0


def test_random_windows_lie_inside_the_image_and_cover_every_window():
    from course_utils.proposals import random_windows

    g = torch.Generator().manual_seed(0)
    w = random_windows(4000, 3, 2, generator=g)  # a 2x3 image has 3 * 6 = 18 windows
    assert w.shape == (4000, 4) and w.dtype == torch.float32
    assert (w[:, 0] < w[:, 2]).all() and (w[:, 1] < w[:, 3]).all()
    assert w[:, [0, 2]].min() >= 0 and w[:, 2].max() <= 2 and w[:, 3].max() <= 3
    counts = torch.unique(w, dim=0, return_counts=True)[1]
    assert len(counts) == 18 and counts.min() > 4000 / 18 / 2  # all of them, none rare
