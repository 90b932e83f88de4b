"""course_utils.robustness: attacks against hand-computed gradients, PGD's projection, shifted images."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import robustness as R


def _linear(seed: int = 0, d: int = 12, k: int = 3) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(d, k)


def test_fgsm_matches_the_hand_computed_gradient_sign():
    # for logits W x + b, d(mean CE)/dx_n = W^T (softmax(W x_n + b) - onehot(y_n)) / N
    model = _linear()
    x, y = torch.rand(5, 12) * 0.6 + 0.2, torch.tensor([0, 1, 2, 0, 1])
    p = torch.softmax(model(x), 1).detach()
    grad = (p - F.one_hot(y, 3).float()) @ model.weight.detach() / len(x)
    eps = 0.05
    torch.testing.assert_close(R.fgsm(model, x, y, eps), x + eps * grad.sign())
    torch.testing.assert_close(R.fgsm(model, x, y, eps, targeted=True), x - eps * grad.sign())
    assert model.weight.grad is None  # the attack leaves the model's gradients alone


def test_fgsm_clips_to_the_image_range_and_raises_the_loss():
    model = _linear(1)
    x, y = torch.rand(64, 12), torch.randint(0, 3, (64,))
    adv = R.fgsm(model, x, y, 0.5)
    assert adv.min() >= 0 and adv.max() <= 1
    assert F.cross_entropy(model(adv), y) > F.cross_entropy(model(x), y)
    target = torch.zeros(64, dtype=torch.int64)
    towards = R.fgsm(model, x, target, 0.05, targeted=True)
    assert F.cross_entropy(model(towards), target) < F.cross_entropy(model(x), target)


def test_pgd_one_step_without_random_start_is_fgsm():
    model = _linear(2)
    x, y = torch.rand(8, 12) * 0.5 + 0.25, torch.randint(0, 3, (8,))
    one = R.pgd(model, x, y, eps=0.1, alpha=0.1, steps=1, random_start=False)
    torch.testing.assert_close(one, R.fgsm(model, x, y, 0.1))


def test_pgd_stays_in_the_ball_and_beats_the_clean_loss():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(12, 32), nn.Tanh(), nn.Linear(32, 3))
    x, y = torch.rand(32, 12), torch.randint(0, 3, (32,))
    g = torch.Generator().manual_seed(0)
    adv = R.pgd(model, x, y, eps=0.03, steps=7, generator=g)
    assert (adv - x).abs().max() <= 0.03 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    assert F.cross_entropy(model(adv), y) > F.cross_entropy(model(x), y)
    again = R.pgd(model, x, y, eps=0.03, steps=7, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(adv, again)  # seeded random start


def test_accuracy_under_counts_and_restores_the_mode():
    model = _linear(4).train()
    x, y = torch.rand(30, 12), torch.randint(0, 3, (30,))
    expected = (model(x).argmax(1) == y).float().mean().item()
    assert R.accuracy_under(model, x, y, batch_size=7) == pytest.approx(expected)
    assert model.training
    attacked = R.accuracy_under(model, x, y, R.fgsm, batch_size=7, eps=0.3)
    manual = (model(torch.cat([R.fgsm(model, x[i:i + 7], y[i:i + 7], 0.3) for i in range(0, 30, 7)])).argmax(1) == y)
    assert attacked == pytest.approx(manual.float().mean().item())


def test_normalize_matches_torchvision():
    from torchvision.transforms import v2

    x = torch.rand(2, 3, 4, 4)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    torch.testing.assert_close(R.Normalize(mean, std)(x), v2.Normalize(list(mean), list(std))(x))


def test_hue_rotate_keeps_grey_and_luma_and_composes():
    x = torch.rand(4, 3, 5, 5) * 0.5 + 0.25  # mid-range colours: no clipping
    torch.testing.assert_close(R.hue_rotate(x, 0.0), x)
    torch.testing.assert_close(R.hue_rotate(x, 360.0), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(R.hue_rotate(R.hue_rotate(x, 20.0), 30.0), R.hue_rotate(x, 50.0), atol=1e-5, rtol=0)
    # 180 degrees negates the chroma: by hand, the result is 2·Y - x with Y = 0.299 R + 0.587 G + 0.114 B
    small = (x - 0.5) * 0.3 + 0.5
    luma = (0.299 * small[:, 0] + 0.587 * small[:, 1] + 0.114 * small[:, 2]).unsqueeze(1)
    torch.testing.assert_close(R.hue_rotate(small, 180.0), 2 * luma - small, atol=1e-5, rtol=0)
    grey = torch.full((1, 3, 2, 2), 0.4)
    torch.testing.assert_close(R.hue_rotate(grey, 77.0), grey)
    # one angle per image
    per = R.hue_rotate(x[:2], torch.tensor([0.0, 180.0]))
    torch.testing.assert_close(per[0], x[0])


def test_random_hue_is_seeded_and_per_image():
    x = torch.rand(1, 3, 4, 4).expand(6, 3, 4, 4).clone()
    a = R.random_hue(x, torch.Generator().manual_seed(0))
    b = R.random_hue(x, torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a[0], a[1])  # same image, different angles


def test_corrupt_kinds_severities_and_errors():
    torch.manual_seed(0)
    images = (torch.rand(8, 3, 16, 16) * 200 + 20).to(torch.uint8)
    for kind in R.CORRUPTIONS:
        out = R.corrupt(images, kind, 3)
        assert out.dtype == torch.uint8 and out.shape == images.shape
        assert not torch.equal(out, images), kind
        change = [(R.corrupt(images, kind, s).float() - images.float()).abs().mean() for s in (1, 5)]
        assert change[1] > change[0], f"{kind}: severity 5 should change the images more than severity 1"
    assert torch.equal(R.corrupt(images, "gaussian_noise", 2, seed=1), R.corrupt(images, "gaussian_noise", 2, seed=1))
    low = R.corrupt(images, "contrast", 5).float()
    assert low.std() < images.float().std() * 0.3
    with pytest.raises(ValueError, match="unknown corruption"):
        R.corrupt(images, "fog")
    with pytest.raises(ValueError, match="severity"):
        R.corrupt(images, "blur", 0)
    with pytest.raises(ValueError, match="uint8"):
        R.corrupt(images.float(), "blur")


def test_adversarial_step_trains_on_fgsm_images_only():
    torch.manual_seed(0)
    make = lambda: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    a, b = make(), make()
    b.load_state_dict(a.state_dict())
    x, y = torch.rand(5, 3, 2, 2), torch.tensor([0, 1, 2, 1, 0])
    opt_a, opt_b = (torch.optim.SGD(m.parameters(), lr=0.5) for m in (a, b))
    x_adv = R.fgsm(a, x, y, 0.1)
    loss = R.adversarial_step(a, opt_a, x, y, 0.1)
    ref = torch.nn.functional.cross_entropy(b(x_adv), y)
    ref.backward()
    opt_b.step()
    assert isinstance(loss, float) and abs(loss - ref.item()) < 1e-6
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)
