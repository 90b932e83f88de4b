"""Contrastive image-text learning (lesson 15): a tiny CLIP, its loss, zero-shot classification, retrieval.

* :class:`Vocab` turns captions into padded token ids (a word-level vocabulary built from the captions).
* :class:`TinyCLIP` pairs a small CNN image encoder with a small Transformer text encoder (the
  :class:`~course_utils.vit.EncoderBlock` of lesson 14); both map to L2-normalised embeddings, and a
  learned temperature scales their cosine similarities (Radford et al., 2021).
* :func:`info_nce` is the symmetric contrastive loss; :class:`ClipLoss` lets ``train.fit`` train the pair
  (the model's output is the image embedding, the batch's "labels" are the caption's token ids).
* :func:`zero_shot_weights` builds a classifier from prompt templates (ensembled) and
  :func:`zero_shot_predict` applies it; :func:`positives_matrix`, :func:`recall_at_k` and
  :func:`chance_recall` score retrieval.
* :func:`load_open_clip` builds open_clip models, pre-trained or (offline rehearsal) with random weights,
  and :func:`open_clip_encoders` wraps them for the functions above. open_clip is imported only there.

Layouts: images float NCHW (normalised); token ids int64 (N, L), 0 = padding; embeddings (N, D), unit norm.
"""
from __future__ import annotations

import math
import re
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .vit import EncoderBlock

__all__ = ["Vocab", "ImageEncoder", "TextEncoder", "TinyCLIP", "info_nce", "ClipLoss", "zero_shot_weights",
           "zero_shot_predict", "positives_matrix", "recall_at_k", "chance_recall", "load_open_clip", "open_clip_encoders"]


class Vocab:
    """Word-level vocabulary: id 0 = padding, 1 = unknown word, then the words in order of first use."""

    PAD, UNK = 0, 1

    def __init__(self, texts: Sequence[str], max_len: int = 16):
        self.words = ["<pad>", "<unk>"]
        self.index = {}
        for text in texts:
            for w in self.split(text):
                if w not in self.index:
                    self.index[w] = len(self.words)
                    self.words.append(w)
        self.max_len = max_len

    @staticmethod
    def split(text: str) -> list[str]:
        """Lower-case words (letters and digits); punctuation is dropped."""
        return re.findall(r"[a-z0-9]+", text.lower())

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Token ids (N, max_len), int64, padded with 0 and cut at ``max_len`` words."""
        out = torch.zeros(len(texts), self.max_len, dtype=torch.int64)
        for i, text in enumerate(texts):
            ids = [self.index.get(w, self.UNK) for w in self.split(text)][: self.max_len]
            out[i, : len(ids)] = torch.tensor(ids, dtype=torch.int64)
        return out


class ImageEncoder(nn.Module):
    """Small CNN: a 4×4 stride-4 "patchify" stem, two conv-BN-ReLU stages, global pooling, linear to ``dim``.

    Expects normalised NCHW images (side a multiple of 8 after the stem); returns (N, dim), not normalised.
    """

    def __init__(self, dim: int = 64, width: int = 32, in_channels: int = 3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 4, stride=4), nn.BatchNorm2d(width), nn.ReLU(inplace=True),  # (B, w, H/4, W/4)
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # (B, w, H/8, W/8)
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())  # (B, 2w)
        self.proj = nn.Linear(2 * width, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.features(x))


class TextEncoder(nn.Module):
    """Word embeddings + learned positions, ``depth`` pre-norm encoder blocks, mean over the real words, linear."""

    def __init__(self, vocab_size: int, dim: int = 64, width: int = 64, depth: int = 1, heads: int = 4,
                 max_len: int = 16):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, width, padding_idx=Vocab.PAD)
        self.pos = nn.Parameter(torch.randn(1, max_len, width) * 0.02)
        self.blocks = nn.ModuleList([EncoderBlock(width, heads, 2 * width) for _ in range(depth)])
        self.norm = nn.LayerNorm(width)
        self.proj = nn.Linear(width, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        pad = tokens == Vocab.PAD  # (N, L) True where there is no word
        x = self.embed(tokens) + self.pos[:, : tokens.shape[1]]  # (N, L, width)
        for blk in self.blocks:
            x = blk(x, key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).float()  # (N, L, 1)
        x = (self.norm(x) * keep).sum(1) / keep.sum(1).clamp(min=1)  # mean over the words
        return self.proj(x)


class TinyCLIP(nn.Module):
    """An image encoder and a text encoder into one embedding space, and a learned temperature.

    ``forward(images)`` returns the normalised image embeddings (so ``train.fit`` can drive it);
    ``encode_text(tokens)`` the normalised text embeddings; ``logit_scale`` = log(1 / temperature).
    """

    def __init__(self, vocab_size: int, dim: int = 64, image_width: int = 32, text_width: int = 64,
                 text_depth: int = 1, max_len: int = 16, temperature: float = 0.07):
        super().__init__()
        self.image = ImageEncoder(dim, image_width)
        self.text = TextEncoder(vocab_size, dim, text_width, text_depth, max_len=max_len)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / temperature)))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image(images), dim=-1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text(tokens), dim=-1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encode_image(images)

    @property
    def temperature(self) -> float:
        return float(1 / self.logit_scale.detach().exp())


def info_nce(image_emb: torch.Tensor, text_emb: torch.Tensor, temperature: float | torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE: mean of the image->text and text->image cross-entropies; pair i is row i of both.

    Embeddings (N, D) should be L2-normalised; logits are cosine similarities / ``temperature``.
    """
    logits = image_emb @ text_emb.T / temperature  # (N, N): row = image, column = caption
    target = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


class ClipLoss:
    """``loss(image_emb, tokens)`` for ``train.fit``: encodes the captions with ``model`` and applies :func:`info_nce`.

    The temperature is the model's learned one, capped as in CLIP (logit scale at most 100).
    """

    def __init__(self, model: TinyCLIP):
        self.model = model

    def __call__(self, image_emb: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        scale = self.model.logit_scale.exp().clamp(max=100)
        return info_nce(image_emb, self.model.encode_text(tokens), 1 / scale)

    def __repr__(self) -> str:
        return "ClipLoss(symmetric InfoNCE, learned temperature)"


@torch.no_grad()
def zero_shot_weights(encode_text: Callable[[Sequence[str]], torch.Tensor], classnames: Sequence[str],
                      templates: Sequence[str]) -> torch.Tensor:
    """One unit-norm text embedding per class, (C, D): each prompt ``template.format(c)`` encoded and
    normalised, averaged over the templates (prompt ensembling), normalised again."""
    rows = []
    for c in classnames:
        emb = F.normalize(encode_text([t.format(c) for t in templates]).float(), dim=-1)  # (T, D)
        rows.append(F.normalize(emb.mean(0), dim=-1))
    return torch.stack(rows)


@torch.no_grad()
def zero_shot_predict(encode_images: Callable[[torch.Tensor], torch.Tensor],
                      encode_text: Callable[[Sequence[str]], torch.Tensor], images: torch.Tensor,
                      classnames: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """Class index (N,) for each image: the class whose ensembled prompt embedding is most similar to it."""
    weights = zero_shot_weights(encode_text, classnames, templates)  # (C, D)
    emb = F.normalize(encode_images(images).float(), dim=-1)  # (N, D)
    return (emb @ weights.to(emb.device).T).argmax(dim=1).cpu()


def positives_matrix(captions: Sequence[Sequence[str]], texts: Sequence[str]) -> torch.Tensor:
    """bool (images, texts): True where text j is one of image i's captions (identical strings count for every image)."""
    index = {t: j for j, t in enumerate(texts)}
    pos = torch.zeros(len(captions), len(texts), dtype=torch.bool)
    for i, caps in enumerate(captions):
        for c in caps:
            if c in index:
                pos[i, index[c]] = True
    return pos


def recall_at_k(sim: torch.Tensor, positives: torch.Tensor, k: int) -> float:
    """Fraction of queries (rows of ``sim``, (Q, G)) with a positive item (``positives``, bool (Q, G)) in their top k."""
    top = sim.topk(min(k, sim.shape[1]), dim=1).indices  # (Q, k), most similar first
    return positives.gather(1, top).any(dim=1).float().mean().item()


def chance_recall(positives: torch.Tensor, k: int) -> float:
    """Expected recall@k of a random ranking: 1 - C(G - p, k) / C(G, k) per query (p positives), averaged."""
    g = positives.shape[1]
    p = positives.sum(1).tolist()
    miss = [math.comb(g - n, k) / math.comb(g, k) if g - n >= k else 0.0 for n in p]
    return 1 - sum(miss) / len(miss)


def open_clip_encoders(model, preprocess, tokenizer, device: str = "cpu", batch_size: int = 256):
    """(encode_images, encode_text) for an open_clip model: uint8 NCHW images / list of strings -> unit-norm (N, D).

    Images go through ``preprocess`` (resize, crop, CLIP's normalisation) one by one, as PIL images.
    """
    from PIL import Image

    @torch.no_grad()
    def encode_images(images: torch.Tensor) -> torch.Tensor:
        out = []
        for i in range(0, len(images), batch_size):
            batch = torch.stack([preprocess(Image.fromarray(im.permute(1, 2, 0).cpu().numpy()))
                                 for im in images[i:i + batch_size]])
            out.append(F.normalize(model.encode_image(batch.to(device)).float(), dim=-1).cpu())
        return torch.cat(out)

    @torch.no_grad()
    def encode_text(texts: Sequence[str]) -> torch.Tensor:
        return F.normalize(model.encode_text(tokenizer(list(texts)).to(device)).float(), dim=-1).cpu()

    return encode_images, encode_text


def load_open_clip(name: str = "ViT-B-32", tag: str = "openai", weights: bool = True, device: str = "cpu"):
    """(model in eval mode, preprocess, tokenizer) for open_clip's ``name`` trained as ``tag``.

    ``weights=False`` builds the very same architecture (including the tag's QuickGELU setting) with
    random weights and downloads nothing: the offline rehearsal of this code path. With weights, the
    download goes to the course weights cache (``HF_HOME`` under ``data.weights_dir()``).
    """
    try:
        import open_clip
    except ImportError as exc:
        raise ImportError("this part needs open_clip: pip install open-clip-torch") from exc
    from .data import use_weights_dir

    use_weights_dir()
    quick_gelu = bool(open_clip.get_pretrained_cfg(name, tag).get("quick_gelu", False))  # OpenAI's weights use it
    model, _, preprocess = open_clip.create_model_and_transforms(
        name, pretrained=tag if weights else None, force_quick_gelu=quick_gelu, device=device)
    return model.eval(), preprocess, open_clip.get_tokenizer(name)
