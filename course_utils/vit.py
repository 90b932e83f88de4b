"""Transformers for images (lesson 14): attention, the pre-norm encoder block, patch embedding, a small ViT.

Each piece is written out so a learner can read it next to the paper, and each matches a PyTorch
reference (``tests/test_vit.py``): :func:`attention` equals ``F.scaled_dot_product_attention``;
:class:`EncoderBlock` has the parameter names of ``nn.TransformerEncoderLayer(norm_first=True)``, whose
weights load into it; :class:`PatchEmbed` is the strided convolution of torchvision's ViT and equals
:func:`patchify` followed by a linear layer. :func:`attention_rollout` (Abnar & Zuidema, 2020) turns a
ViT's attention weights into one map per image.

Layouts: images float NCHW; token sequences (B, T, D) with the class token first (T = 1 + patches);
attention weights (B, heads, T, T), rows = queries, each row sums to 1.
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["attention", "multi_head_attention", "patchify", "PatchEmbed", "EncoderBlock", "ViT", "attention_rollout", "cls_attention",
           "vit_param_breakdown"]


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q kᵀ / √d + mask) v for (..., T, d) tensors; returns (output (..., T, d_v), weights (..., T, S)).

    ``mask`` as in ``F.scaled_dot_product_attention``: bool (True = may attend) or float (added to the scores).
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., T, S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    weights = scores.softmax(dim=-1)  # each query's weights over the keys sum to 1
    return weights @ v, weights


def multi_head_attention(x: torch.Tensor, in_weight: torch.Tensor, in_bias: torch.Tensor, out_weight: torch.Tensor,
                         out_bias: torch.Tensor, heads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Self-attention with ``heads`` heads on (B, T, D), weights laid out as ``nn.MultiheadAttention``'s
    (``in_proj_weight`` (3D, D) = q, k, v stacked; ``out_proj``); returns (output (B, T, D), weights (B, h, T, T))."""
    b, t, d = x.shape
    q, k, v = (x @ in_weight.T + in_bias).chunk(3, dim=-1)  # each (B, T, D)
    split = lambda z: z.reshape(b, t, heads, d // heads).transpose(1, 2)  # (B, h, T, D/h)
    out, weights = attention(split(q), split(k), split(v))  # (B, h, T, D/h)
    out = out.transpose(1, 2).reshape(b, t, d)  # heads side by side again: (B, T, D)
    return out @ out_weight.T + out_bias, weights


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, C·p·p): patches in row-major order, each flattened channel-first like a conv kernel."""
    b, c, h, w = images.shape
    if h % patch or w % patch:
        raise ValueError(f"image size {h}x{w} is not a multiple of the patch size {patch}: crop or resize first")
    x = images.reshape(b, c, h // patch, patch, w // patch, patch)  # (B, C, nh, p, nw, p)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, nh, nw, C, p, p)
    return x.reshape(b, (h // patch) * (w // patch), c * patch * patch)


class PatchEmbed(nn.Module):
    """Cut an image into p×p patches and project each to ``dim``: one Conv2d with kernel = stride = p.

    Expects NCHW; returns tokens (B, N, dim), N = (H/p)·(W/p), in row-major patch order.
    """

    def __init__(self, patch: int, dim: int, in_channels: int = 3):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)  # (B, dim, H/p, W/p)
        return x.flatten(2).transpose(1, 2)  # (B, N, dim)


class EncoderBlock(nn.Module):
    """Pre-norm Transformer encoder block: x + MHA(LN(x)), then x + MLP(LN(x)) with a GELU MLP.

    Parameter names are those of ``nn.TransformerEncoderLayer(norm_first=True, batch_first=True)``, so
    its state_dict loads here. Set ``keep_attention = True`` to keep the last forward's attention
    weights (B, heads, T, T) in ``self.attn_weights`` (slower: PyTorch's fused kernel returns none).
    """

    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, mlp_dim)
        self.act = nn.GELU()
        self.linear2 = nn.Linear(mlp_dim, dim)
        self.dropout = nn.Dropout(dropout)
        self.keep_attention = False
        self.attn_weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, D) -> (B, T, D); ``key_padding_mask`` (B, T) is True at padding tokens (nobody attends to them)."""
        h = self.norm1(x)
        h, w = self.self_attn(h, h, h, key_padding_mask=key_padding_mask, need_weights=self.keep_attention,
                              average_attn_weights=False)
        self.attn_weights = w.detach() if w is not None else None
        x = x + self.dropout(h)  # residual around attention
        h = self.linear2(self.dropout(self.act(self.linear1(self.norm2(x)))))
        return x + self.dropout(h)  # residual around the MLP


class ViT(nn.Module):
    """A Vision Transformer (Dosovitskiy et al., 2021): patches + class token + learned positions, encoder, head.

    Expects NCHW images of side ``image_size``; the head reads the class token after the final LayerNorm.
    """

    def __init__(self, image_size: int = 32, patch: int = 4, num_classes: int = 10, dim: int = 64,
                 depth: int = 4, heads: int = 4, mlp_dim: int = 128, in_channels: int = 3, dropout: float = 0.0):
        super().__init__()
        self.grid = image_size // patch  # patches per side
        self.patch_embed = PatchEmbed(patch, dim, in_channels)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + self.grid ** 2, dim) * 0.02)
        self.blocks = nn.Sequential(*[EncoderBlock(dim, heads, mlp_dim, dropout) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Images -> the encoder's input: [class token; patch tokens] + positions, (B, 1 + N, dim)."""
        x = self.patch_embed(x)  # (B, N, dim)
        cls = self.cls_token.expand(len(x), -1, -1)  # (B, 1, dim)
        return torch.cat([cls, x], dim=1) + self.pos_embed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.tokens(x))
        return self.head(self.norm(x[:, 0]))  # (B, classes) from the class token

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every block's attention weights for images ``x``: a list of (B, heads, T, T), first block first."""
        was_training = self.training
        self.eval()
        for blk in self.blocks:
            blk.keep_attention = True
        try:
            self(x)
            return [blk.attn_weights for blk in self.blocks]
        finally:
            for blk in self.blocks:
                blk.keep_attention = False
            self.train(was_training)


def attention_rollout(attentions: list[torch.Tensor]) -> torch.Tensor:
    """Attention rollout: mean over heads, add the residual (½A + ½I), multiply through the layers; (B, T, T)."""
    rollout = None
    for a in attentions:
        a = a.mean(dim=1)  # (B, T, T), heads averaged
        a = 0.5 * a + 0.5 * torch.eye(a.shape[-1], device=a.device)  # the skip connection carries the token itself
        a = a / a.sum(dim=-1, keepdim=True)
        rollout = a if rollout is None else a @ rollout  # later layer on the left: token flow from input up
    return rollout


def cls_attention(attn: torch.Tensor, grid: int) -> torch.Tensor:
    """What the class token attends to among the patches, as a (B, grid, grid) map (from (B, [heads,] T, T))."""
    if attn.ndim == 4:
        attn = attn.mean(dim=1)  # average the heads
    return attn[:, 0, 1:].reshape(-1, grid, grid)


def vit_param_breakdown(model: nn.Module) -> dict[str, int]:
    """Parameters of torchvision's VisionTransformer by part: patch embedding, class token + positions,
    encoder blocks, final norm, head (the values add up to the model's total)."""
    count = lambda m: sum(p.numel() for p in m.parameters())
    enc = model.encoder
    return {"patch embedding (conv_proj)": count(model.conv_proj),
            "class token + position embeddings": model.class_token.numel() + enc.pos_embedding.numel(),
            f"{len(enc.layers)} encoder blocks": count(enc.layers),
            "final LayerNorm": count(enc.ln),
            "head": count(model.heads)}
