"""course_utils.ssl: pretext batches, jigsaw permutations, NT-Xent against a loop, SimCLR views, linear probe."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from course_utils import ssl


def test_rotation_batch_by_hand_and_against_rot90():
    x = torch.tensor([[[[1, 2], [3, 4]]]])              # (1, 1, 2, 2)
    rotated, labels = ssl.rotation_batch(x)
    assert labels.tolist() == [0, 1, 2, 3]
    assert rotated[1, 0].tolist() == [[2, 4], [1, 3]]   # 90° counter-clockwise, by hand
    assert rotated[2, 0].tolist() == [[4, 3], [2, 1]]
    imgs = torch.rand(3, 3, 5, 5)
    rotated, labels = ssl.rotation_batch(imgs)
    assert rotated.shape == (12, 3, 5, 5) and labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    for i in range(12):
        torch.testing.assert_close(rotated[i], torch.rot90(imgs[i % 3], int(labels[i]), dims=(1, 2)))
    with pytest.raises(ValueError, match="square"):
        ssl.rotation_batch(torch.rand(1, 3, 4, 5))


def test_grid_tiles_cut_row_by_row_with_gaps():
    x = torch.arange(2 * 1 * 9 * 9).float().view(2, 1, 9, 9)
    tiles = ssl.grid_tiles(x, grid=3)
    assert tiles.shape == (2, 9, 1, 3, 3)
    whole = tiles.view(2, 3, 3, 1, 3, 3).permute(0, 3, 1, 4, 2, 5).reshape(2, 1, 9, 9)
    torch.testing.assert_close(whole, x)                # no gap: the tiles put back give the image
    gapped = ssl.grid_tiles(x, grid=3, gap=1)           # tile side (9 - 2) // 3 = 2
    assert gapped.shape == (2, 9, 1, 2, 2)
    torch.testing.assert_close(gapped[:, 4], x[..., 3:5, 3:5])   # the centre tile
    with pytest.raises(ValueError, match="too small"):
        ssl.grid_tiles(torch.rand(1, 3, 4, 4), grid=3, gap=2)


def _min_distance(perms: torch.Tensor) -> int:
    return min(int((a != b).sum()) for a, b in itertools.combinations(perms, 2))


def test_max_hamming_permutations_are_distinct_permutations_far_apart():
    perms = ssl.max_hamming_permutations(30, tiles=9, seed=0)
    assert perms.shape == (30, 9) and perms.dtype == torch.int64
    assert all(sorted(p.tolist()) == list(range(9)) for p in perms)
    assert len({tuple(p.tolist()) for p in perms}) == 30
    assert int((perms[0] != perms[1]).sum()) == 9      # the second one differs everywhere from the first
    rng = torch.Generator().manual_seed(0)
    random_set = torch.stack([torch.randperm(9, generator=rng) for _ in range(30)])
    assert _min_distance(perms) > _min_distance(random_set)
    # 3 tiles: the best set of 3 is a Latin square (every pair differs everywhere); greedy finds it
    assert _min_distance(ssl.max_hamming_permutations(3, tiles=3, seed=5)) == 3
    torch.testing.assert_close(perms, ssl.max_hamming_permutations(30, tiles=9, seed=0))
    with pytest.raises(ValueError):
        ssl.max_hamming_permutations(7, tiles=3)


def _nt_xent_loop(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> torch.Tensor:
    """The SimCLR paper's algorithm, written as plainly as possible: one anchor at a time."""
    z = [F.normalize(v, dim=0) for v in torch.cat([z1, z2])]
    n, losses = len(z1), []
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        denom = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(2 * n) if k != i)
        losses.append(-math.log(math.exp(float(z[i] @ z[j]) / tau) / denom))
    return torch.tensor(sum(losses) / (2 * n))


def test_nt_xent_matches_the_loop_and_hand_made_cases():
    torch.manual_seed(0)
    z1, z2 = torch.randn(6, 5), torch.randn(6, 5)
    for tau in (0.1, 0.5, 1.0):
        torch.testing.assert_close(ssl.nt_xent(z1, z2, tau), _nt_xent_loop(z1, z2, tau), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ssl.nt_xent(3 * z1, 0.5 * z2), ssl.nt_xent(z1, z2))  # cosine: scale-free
    # identical views, orthogonal images: by hand, log(1 + (2N - 2) e^(-1/τ)), the smallest it gets here
    e = torch.eye(4)
    best = ssl.nt_xent(e, e, 0.5)
    torch.testing.assert_close(best, torch.tensor(math.log(1 + 6 * math.exp(-2.0))))
    assert ssl.nt_xent(e, e[[1, 0, 3, 2]], 0.5) > best   # wrong partners cost more
    assert ssl.nt_xent(e, torch.randn(4, 4), 0.5) > best


def test_simclr_transform_is_a_seeded_uint8_pipeline():
    img = (torch.rand(3, 20, 20) * 255).to(torch.uint8)
    tf = ssl.simclr_transform(16)
    torch.manual_seed(0)
    a = tf(img)
    torch.manual_seed(0)
    assert torch.equal(a, tf(img)) and a.shape == (3, 16, 16) and a.dtype == torch.uint8
    names = [type(t).__name__ for t in tf.transforms]
    assert names[:2] == ["RandomResizedCrop", "RandomHorizontalFlip"] and "RandomGrayscale" in names
    assert "GaussianBlur" in str(ssl.simclr_transform(224, blur=True)) and "GaussianBlur" not in str(tf)


def test_simclr_augment_draws_per_image_and_is_seeded():
    x = torch.rand(1, 3, 12, 12).expand(400, 3, 12, 12).clone()
    a = ssl.simclr_augment(x, torch.Generator().manual_seed(1))
    b = ssl.simclr_augment(x, torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    assert not torch.allclose(a[0], a[1])                     # same image, different views
    grey = ((a[:, 0] - a[:, 1]).abs().amax(dim=(1, 2)) < 1e-6).float().mean()
    assert 0.12 < grey < 0.28                                 # grayscale for about 20% of the images
    # no colour change and a full-size crop: only the flip and the aspect-ratio zoom remain
    plain = ssl.simclr_augment(x[:4], torch.Generator().manual_seed(0), strength=0.0, crop_scale=(1.0, 1.0))
    colourful = plain[(plain[:, 0] - plain[:, 1]).abs().amax(dim=(1, 2)) > 1e-6]
    assert colourful.mean() == pytest.approx(x.mean().item(), abs=0.05)


def test_linear_probe_separable_and_random_labels():
    torch.manual_seed(0)
    centres = torch.randn(3, 8) * 5
    y_tr, y_te = torch.arange(300) % 3, torch.arange(90) % 3
    f_tr, f_te = centres[y_tr] + torch.randn(300, 8), centres[y_te] + torch.randn(90, 8)
    assert ssl.linear_probe(f_tr, y_tr, f_te, y_te, epochs=10) == 1.0
    noise = ssl.linear_probe(torch.randn(300, 8), y_tr, torch.randn(90, 8), y_te, epochs=10)
    assert noise < 0.6
    # features shifted and scaled by a huge constant: standardisation with the train statistics absorbs it
    shifted = ssl.linear_probe(f_tr * 1e3 + 1e4, y_tr, f_te * 1e3 + 1e4, y_te, epochs=10)
    assert shifted == 1.0


def test_words_and_language_model_pairs_by_hand():
    tokens = ssl.words("She went out. She's back!")
    assert tokens == ["she", "went", "out", ".", "she's", "back", "!"]
    pairs = ssl.next_token_pairs(["a", "b", "c"])
    assert pairs == [(["a"], "b"), (["a", "b"], "c")]
    masked = ssl.masked_lm_pairs(["a", "b", "c"])
    assert masked == [(["[MASK]", "b", "c"], "a"), (["a", "[MASK]", "c"], "b"), (["a", "b", "[MASK]"], "c")]
    original = ["x", "y"]
    ssl.masked_lm_pairs(original, mask="_")
    assert original == ["x", "y"]  # the input is not changed


def test_probe_logits_matches_torch_sgd_and_uses_train_statistics():
    g = torch.Generator().manual_seed(0)
    f_tr = torch.randn(50, 4, generator=g, dtype=torch.float64) * torch.tensor([1.0, 100.0, 0.01, 3.0], dtype=torch.float64) + 5
    y_tr = (f_tr[:, 1] > 5).long() + (f_tr[:, 2] > 5).long()
    f_te = torch.randn(20, 4, generator=g, dtype=torch.float64) * 2 + 7
    # reference: nn.Linear from zero, torch.optim.SGD (no momentum), full batch, train statistics
    mu, sd = f_tr.mean(0), f_tr.std(0) + 1e-6
    head = torch.nn.Linear(4, 3).double()
    torch.nn.init.zeros_(head.weight), torch.nn.init.zeros_(head.bias)
    opt = torch.optim.SGD(head.parameters(), lr=0.3)
    for _ in range(25):
        opt.zero_grad()
        F.cross_entropy(head((f_tr - mu) / sd), y_tr).backward()
        opt.step()
    ref = head((f_te - mu) / sd).detach()
    out = ssl.probe_logits(f_tr, y_tr, f_te, 3, steps=25, lr=0.3)
    torch.testing.assert_close(out, ref)
    assert not out.requires_grad
    # zero steps: all logits zero; the test set's own statistics would give other logits
    assert torch.equal(ssl.probe_logits(f_tr, y_tr, f_te, 3, steps=0), torch.zeros(20, 3, dtype=torch.float64))
