"""course_utils.vit against PyTorch's own attention, nn.TransformerEncoderLayer, conv2d and torchvision's ViT-B/16."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from course_utils import vit


@pytest.mark.parametrize("shape", [(2, 5, 8), (3, 4, 7, 16)])
def test_attention_matches_sdpa(shape):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(*shape, generator=g) for _ in range(3))
    out, w = vit.attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w.sum(-1), torch.ones(shape[:-1]))  # rows are distributions


def test_attention_masks_match_sdpa():
    g = torch.Generator().manual_seed(1)
    q, k, v = torch.randn(2, 3, 6, 8, generator=g), torch.randn(2, 3, 5, 8, generator=g), torch.randn(2, 3, 5, 4, generator=g)
    keep = torch.rand(6, 5, generator=g) > 0.3
    keep[:, 0] = True  # every query may attend somewhere
    out, w = vit.attention(q, k, v, keep)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=keep), atol=1e-5, rtol=1e-5)
    assert (w[..., ~keep] == 0).all()
    bias = torch.randn(6, 5, generator=g)
    torch.testing.assert_close(vit.attention(q, k, v, bias)[0], F.scaled_dot_product_attention(q, k, v, attn_mask=bias),
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("heads", [1, 4])
def test_multi_head_attention_matches_nn_multiheadattention(heads):
    torch.manual_seed(heads)
    mha = nn.MultiheadAttention(16, heads, batch_first=True)
    with torch.no_grad():  # PyTorch starts the biases at 0: make them count
        mha.in_proj_bias.normal_()
        mha.out_proj.bias.normal_()
    x = torch.randn(2, 6, 16)
    ref, ref_w = mha(x, x, x, need_weights=True, average_attn_weights=False)
    out, w = vit.multi_head_attention(x, mha.in_proj_weight, mha.in_proj_bias, mha.out_proj.weight,
                                      mha.out_proj.bias, heads)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w, ref_w, atol=1e-5, rtol=1e-5)


def test_encoder_block_equals_pre_norm_transformer_encoder_layer():
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, activation="gelu", batch_first=True, norm_first=True).eval()
    mine = vit.EncoderBlock(32, 4, 64).eval()
    mine.load_state_dict(ref.state_dict())  # same parameter names and shapes
    x = torch.randn(3, 7, 32)
    torch.testing.assert_close(mine(x), ref(x), atol=1e-5, rtol=1e-5)
    pad = torch.zeros(3, 7, dtype=torch.bool)
    pad[:, 5:] = True
    torch.testing.assert_close(mine(x, key_padding_mask=pad)[:, :5], ref(x, src_key_padding_mask=pad)[:, :5],
                               atol=1e-5, rtol=1e-5)


def test_encoder_block_keeps_attention_weights_only_when_asked():
    blk = vit.EncoderBlock(16, 2, 32).eval()
    x = torch.randn(2, 5, 16)
    blk(x)
    assert blk.attn_weights is None
    blk.keep_attention = True
    blk(x)
    assert blk.attn_weights.shape == (2, 2, 5, 5)
    torch.testing.assert_close(blk.attn_weights.sum(-1), torch.ones(2, 2, 5))


@pytest.mark.parametrize("c,size,p", [(3, 8, 4), (2, 12, 3), (1, 6, 2)])
def test_patchify_then_linear_equals_strided_conv(c, size, p):
    torch.manual_seed(0)
    embed = vit.PatchEmbed(p, 5, c)
    x = torch.randn(2, c, size, size)
    linear = vit.patchify(x, p) @ embed.proj.weight.reshape(5, -1).T + embed.proj.bias  # kernel flattened as a patch
    torch.testing.assert_close(linear, embed(x), atol=1e-5, rtol=1e-5)
    assert embed(x).shape == (2, (size // p) ** 2, 5)


def test_patchify_order_and_errors():
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
    patches = vit.patchify(x, 2)  # (1, 4, 8): top-left, top-right, bottom-left, bottom-right
    assert patches[0, 1].tolist() == [2, 3, 6, 7, 18, 19, 22, 23]  # channel 0's 2x2, then channel 1's
    with pytest.raises(ValueError, match="multiple of the patch size"):
        vit.patchify(torch.zeros(1, 3, 10, 10), 4)


def test_vit_shapes_attention_and_rollout():
    torch.manual_seed(0)
    model = vit.ViT(image_size=16, patch=4, num_classes=7, dim=32, depth=2, heads=4, mlp_dim=64)
    x = torch.randn(3, 3, 16, 16)
    assert model(x).shape == (3, 7)
    maps = model.attention_maps(x)
    assert len(maps) == 2 and maps[0].shape == (3, 4, 17, 17)
    assert model.training and not any(b.keep_attention for b in model.blocks)  # state restored
    roll = vit.attention_rollout(maps)
    torch.testing.assert_close(roll.sum(-1), torch.ones(3, 17))  # still a distribution over input tokens
    # one layer by hand: mean over heads, half identity, renormalised
    a = maps[0].mean(1) * 0.5 + 0.5 * torch.eye(17)
    torch.testing.assert_close(vit.attention_rollout(maps[:1]), a / a.sum(-1, keepdim=True))
    assert vit.cls_attention(maps[-1], 4).shape == (3, 4, 4)


def test_vit_without_positions_is_permutation_invariant_in_the_class_token():
    torch.manual_seed(0)
    model = vit.ViT(image_size=8, patch=4, num_classes=3, dim=16, depth=1, heads=2, mlp_dim=32).eval()
    with torch.no_grad():
        model.pos_embed.zero_()
    x = torch.randn(1, 3, 8, 8)
    swapped = torch.cat([x[..., 4:], x[..., :4]], dim=-1)  # swap the left and right patch columns
    torch.testing.assert_close(model(x), model(swapped), atol=1e-5, rtol=1e-5)


def test_vit_b16_breakdown_adds_up_to_torchvision_count():
    with torch.device("meta"):  # shapes only: nothing is allocated or initialised
        model = torchvision.models.vit_b_16(weights=None)
    parts = vit.vit_param_breakdown(model)
    assert sum(parts.values()) == sum(p.numel() for p in model.parameters()) == 86_567_656
    assert parts["patch embedding (conv_proj)"] == 768 * 3 * 16 * 16 + 768
    assert parts["head"] == 768 * 1000 + 1000
