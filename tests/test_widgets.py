"""The "Try it" widgets: each callback against a reference, bad input refused, and try_it's static grid and
live controls."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from course_utils import widgets as W
from course_utils.clip import TinyCLIP, Vocab
from course_utils.robustness import fgsm
from course_utils.vit import ViT, cls_attention


def test_conv_kernel_matches_scipy_correlate_with_a_repeated_border():
    img = torch.rand(12, 9, generator=torch.Generator().manual_seed(0))
    for name, k in W.KERNELS.items():
        ref = ndimage.correlate(img.double().numpy(), np.array(k, dtype=float), mode="nearest")
        np.testing.assert_allclose(W.conv_kernel(img, k).numpy(), ref, atol=1e-5, err_msg=name)
    torch.testing.assert_close(W.conv_kernel(img, W.KERNELS["identity"]), img)
    with pytest.raises(ValueError, match="3 rows of 3"):
        W.conv_kernel(img, [[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="grey image"):
        W.conv_kernel(torch.rand(3, 8, 8), W.KERNELS["identity"])


def _greedy_nms(boxes, scores, thr):
    from torchvision.ops import box_iou
    order, keep = scores.argsort(descending=True).tolist(), []
    for i in order:
        if all(box_iou(boxes[i:i + 1], boxes[j:j + 1]).item() <= thr for j in keep):
            keep.append(i)
    return keep


def test_nms_keep_is_greedy_nms_and_keeps_more_as_the_threshold_rises():
    g = torch.Generator().manual_seed(1)
    xy = torch.rand(30, 2, generator=g) * 40
    boxes = torch.cat([xy, xy + 8 + torch.rand(30, 2, generator=g) * 10], 1)
    scores = torch.rand(30, generator=g)
    counts = []
    for thr in (0.0, 0.2, 0.5, 0.8, 1.0):
        keep = W.nms_keep(boxes, scores, thr)
        assert keep.tolist() == _greedy_nms(boxes, scores, thr)
        counts.append(len(keep))
    assert counts == sorted(counts) and counts[-1] == 30 and counts[0] < counts[-1]
    high = W.nms_keep(boxes, scores, 0.5, min_score=0.5)
    assert bool((scores[high] > 0.5).all()) and set(high.tolist()) <= set(range(30))
    with pytest.raises(ValueError, match="between 0 and 1"):
        W.nms_keep(boxes, scores, 1.5)


def test_fgsm_attack_is_the_lessons_fgsm_and_eps_zero_is_clean():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    x, y = torch.rand(40, 3, 8, 8), torch.randint(0, 4, (40,))
    clean, acc0 = W.fgsm_attack(model, x, y, 0.0)
    assert torch.equal(clean, x) and acc0 == pytest.approx((model(x).argmax(1) == y).float().mean().item())
    adv, acc = W.fgsm_attack(model, x, y, 8 / 255)
    torch.testing.assert_close(adv, fgsm(model.eval(), x, y, 8 / 255))
    assert acc == pytest.approx((model(adv).argmax(1) == y).float().mean().item()) and acc < acc0
    with pytest.raises(ValueError, match="non-negative"):
        W.fgsm_attack(model, x, y, -0.1)


def test_head_attention_is_one_head_of_the_class_token_row():
    torch.manual_seed(0)
    vit = ViT(image_size=16, patch=4, num_classes=3, dim=16, depth=2, heads=2, mlp_dim=32).eval()
    image = torch.rand(3, 16, 16)
    maps = vit.attention_maps(image[None])
    for layer in range(2):
        heads = [W.head_attention(vit, image, layer, h) for h in range(2)]
        for h in range(2):
            torch.testing.assert_close(heads[h].flatten(), maps[layer][0, h, 0, 1:])
        torch.testing.assert_close(sum(heads) / 2, cls_attention(maps[layer], vit.grid)[0])  # heads averaged
    with pytest.raises(ValueError, match="2 layers of 2 heads"):
        W.head_attention(vit, image, 2, 0)


def test_prompt_probs_is_a_softmax_of_cosine_over_temperature():
    torch.manual_seed(0)
    vocab = Vocab(["a red circle", "a blue square", "a green triangle"])
    model = TinyCLIP(len(vocab), dim=16, image_width=8, text_width=16, max_len=vocab.max_len).eval()
    image, prompts = torch.rand(3, 32, 32), ["a red circle", "a blue square", "a green triangle"]
    encode_text = lambda texts: model.encode_text(vocab.encode(texts))
    p = W.prompt_probs(model.encode_image, encode_text, image, prompts, temperature=0.07)
    with torch.no_grad():
        sims = model.encode_image(image[None]) @ encode_text(prompts).T
    torch.testing.assert_close(p, torch.softmax(sims[0] / 0.07, 0))
    assert p.sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(W.prompt_probs(model.encode_image, encode_text, image, [" a red circle ", ""], 0.07),
                               torch.ones(1))
    with pytest.raises(ValueError, match="no prompt"):
        W.prompt_probs(model.encode_image, encode_text, image, [" "], 0.07)


def test_try_it_draws_the_static_grid_and_builds_live_controls():
    import ipywidgets

    img = torch.rand(10, 10)
    grid = [{"kernel": k, "name": n} for n, k in list(W.KERNELS.items())[:3]]
    panel = lambda ax, kernel, name="": W.kernel_panel(ax, img, kernel, name)
    fig, widget = W.try_it(panel, grid, {"kernel": ipywidgets.fixed(W.KERNELS["sharpen"])}, live=False)
    assert widget is None and [ax.get_title() for ax in fig.axes] == ["identity", "box blur", "sharpen"]
    np.testing.assert_allclose(fig.axes[1].images[0].get_array(), W.conv_kernel(img, W.KERNELS["box blur"]).numpy())
    fig, widget = W.try_it(panel, grid, {"kernel": ipywidgets.fixed(W.KERNELS["sharpen"]),
                                         "name": ["a", "b"]}, live=True)
    assert isinstance(widget, ipywidgets.interactive)
    assert [c.description for c in widget.children if hasattr(c, "options")] == ["name"]


def test_each_lessons_demo_draws_its_grid_at_the_fixed_values():
    g = torch.Generator().manual_seed(0)
    fig, widget = W.kernel_demo(torch.rand(16, 16, generator=g))
    assert widget is None and [ax.get_title() for ax in fig.axes] == ["identity", "box blur", "sharpen", "Sobel x", "outline"]

    xy = torch.rand(12, 2, generator=g) * 20
    boxes, scores = torch.cat([xy, xy + 8], 1), torch.rand(12, generator=g)
    fig, _ = W.nms_demo(torch.rand(3, 32, 32, generator=g), boxes, scores, grid=(0.2, 0.8))
    for ax, t in zip(fig.axes, (0.2, 0.8)):
        kept = len(W.nms_keep(boxes, scores, t, 0.1))
        assert ax.get_title() == f"IoU ≤ {t:.2f}: {kept} of {int((scores > 0.1).sum())} kept" and len(ax.patches) == kept

    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    x, y = torch.rand(30, 3, 8, 8, generator=g), torch.randint(0, 4, (30,), generator=g)
    fig, _ = W.fgsm_demo(model, x, y, grid=(0, 8))
    assert [ax.get_title() for ax in fig.axes] == [f"ε = {e}/255: accuracy {W.fgsm_attack(model, x, y, e / 255)[1]:.2f}"
                                                   for e in (0, 8)]

    vit = ViT(image_size=16, patch=4, num_classes=3, dim=16, depth=3, heads=2, mlp_dim=32)
    fig, _ = W.attention_demo(vit, torch.rand(3, 16, 16, generator=g))
    assert [ax.get_title() for ax in fig.axes] == ["layer 0, head 0", "layer 1, head 0", "layer 2, head 0"]

    vocab = Vocab(["a red circle", "a blue square"])
    clip = TinyCLIP(len(vocab), dim=16, image_width=8, text_width=16, max_len=vocab.max_len).eval()
    enc_text = lambda t: clip.encode_text(vocab.encode(t))
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=g)
    fig, _ = W.prompt_demo(lambda im: clip.encode_image(im.float() / 255), enc_text, image,
                           ["a red circle, a blue square", "a red circle"], 0.07)
    bars = [[b.get_width() for b in ax.patches] for ax in fig.axes if ax.get_xlabel() == "probability"]
    ref = W.prompt_probs(lambda im: clip.encode_image(im.float() / 255), enc_text, image, ["a red circle", "a blue square"], 0.07)
    assert bars[0] == pytest.approx(ref.tolist()) and bars[1] == pytest.approx([1.0])
