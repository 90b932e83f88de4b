"""course_utils.clip: the loss against hand-computed values, retrieval against brute force, open_clip built offline."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from course_utils import clip
from course_utils.train import TensorLoader, fit


def test_vocab_encodes_pads_and_marks_unknown_words():
    v = clip.Vocab(["a small red star", "a large blue Circle."], max_len=5)
    assert v.words[:2] == ["<pad>", "<unk>"] and len(v) == 2 + 7
    ids = v.encode(["a red circle", "a photo of a red star above"])
    assert ids.dtype == torch.int64 and ids.shape == (2, 5)
    assert ids[0].tolist() == [v.index["a"], v.index["red"], v.index["circle"], 0, 0]
    assert ids[1].tolist() == [v.index["a"], v.UNK, v.UNK, v.index["a"], v.index["red"]]  # cut at max_len


def test_text_encoder_ignores_padding():
    torch.manual_seed(0)
    enc = clip.TextEncoder(vocab_size=10, dim=8, width=16, depth=2, heads=4, max_len=6).eval()
    short = torch.tensor([[2, 3, 4, 0]])  # the same caption, padded to 4 and to 6 tokens
    long = torch.tensor([[2, 3, 4, 0, 0, 0]])
    torch.testing.assert_close(enc(short), enc(long), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(enc(short), enc(torch.tensor([[2, 3, 5, 0]])))  # a different word changes it


def test_info_nce_hand_values():
    # two pairs, cosine 0.8 on the diagonal and 0.2 off it: each row's loss is log(1 + e^{-(0.8-0.2)/t})
    emb_i = torch.eye(2, dtype=torch.float64)
    emb_t = torch.tensor([[0.8, 0.2], [0.2, 0.8]], dtype=torch.float64)  # image_i · text_j = emb_t[j, i]
    for t in (0.1, 1.0):
        assert clip.info_nce(emb_i, emb_t, t).item() == pytest.approx(math.log1p(math.exp(-0.6 / t)), rel=1e-5)
    same = F.normalize(torch.ones(4, 3), dim=-1)  # a model that learned nothing: every pair equally likely
    assert clip.info_nce(same, same, 0.07).item() == pytest.approx(math.log(4), rel=1e-5)


def test_info_nce_is_the_mean_of_both_directions():
    g = torch.Generator().manual_seed(0)
    a, b = F.normalize(torch.randn(6, 4, generator=g), dim=-1), F.normalize(torch.randn(6, 4, generator=g), dim=-1)
    logits, y = a @ b.T / 0.5, torch.arange(6)
    expected = (F.cross_entropy(logits, y) + F.cross_entropy(logits.T, y)) / 2
    torch.testing.assert_close(clip.info_nce(a, b, 0.5), expected)
    assert clip.info_nce(a, b, 0.5) != F.cross_entropy(logits, y)  # one direction alone differs here


def test_tiny_clip_embeddings_and_fit_lower_the_loss():
    torch.manual_seed(0)
    v = clip.Vocab(["a red square", "a blue circle", "a green star", "a white ring"], max_len=4)
    texts = ["a red square", "a blue circle", "a green star", "a white ring"] * 4
    colours = {"red": (1, 0, 0), "blue": (0, 0, 1), "green": (0, 1, 0), "white": (1, 1, 1)}
    images = torch.stack([torch.tensor(colours[t.split()[1]], dtype=torch.uint8).view(3, 1, 1).expand(3, 8, 8) * 200
                          for t in texts])
    model = clip.TinyCLIP(len(v), dim=16, image_width=8, text_width=16, max_len=4)
    assert model.encode_text(v.encode(texts[:3])).norm(dim=-1).allclose(torch.ones(3))
    assert model.temperature == pytest.approx(0.07, rel=1e-4)
    loader = TensorLoader(images, v.encode(texts), 8, seed=0)
    h = fit(model, loader, None, epochs=6, lr=3e-3, optimizer="adamw", loss=clip.ClipLoss(model), metrics={},
            task="classification", quiet=True, seed=0)
    assert h["train_loss"][-1] < 0.5 * h["train_loss"][0]
    assert "ClipLoss" in h.config["loss"]


def test_zero_shot_weights_ensemble_normalised_prompts():
    table = {"a x": [3.0, 0.0], "the x": [0.0, 1.0], "a y": [1.0, 1.0], "the y": [-2.0, 0.0]}
    enc = lambda texts: torch.tensor([table[t] for t in texts])
    w = clip.zero_shot_weights(enc, ["x", "y"], ["a {}", "the {}"])
    expected_x = F.normalize(torch.tensor([1.0, 0.0]) + torch.tensor([0.0, 1.0]), dim=0)  # normalise, then average
    expected_y = F.normalize(F.normalize(torch.tensor([1.0, 1.0]), dim=0) + torch.tensor([-1.0, 0.0]), dim=0)
    torch.testing.assert_close(w, torch.stack([expected_x, expected_y]))


def test_zero_shot_predict_picks_the_most_similar_class():
    table = {"a x": [1.0, 0.0, 0.0], "a y": [0.0, 1.0, 0.0], "a z": [0.0, 0.0, 1.0]}
    enc_text = lambda texts: torch.tensor([table[t] for t in texts])
    images = torch.tensor([[0.1, 0.9, 0.0], [2.0, 1.0, 0.0], [0.0, -1.0, 0.5]])
    pred = clip.zero_shot_predict(lambda x: x * 3, enc_text, images, ["x", "y", "z"], ["a {}"])
    assert pred.tolist() == [1, 0, 2]


def _brute_recall(sim, pos, k):
    hits = 0
    for row, p in zip(sim, pos):
        order = sorted(range(len(row)), key=lambda j: -row[j].item())[:k]
        hits += any(p[j] for j in order)
    return hits / len(sim)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_recall_at_k_matches_brute_force(k):
    g = torch.Generator().manual_seed(k)
    sim = torch.randn(7, 9, generator=g)
    pos = torch.rand(7, 9, generator=g) < 0.2
    assert clip.recall_at_k(sim, pos, k) == pytest.approx(_brute_recall(sim, pos, k))


def test_chance_recall_matches_enumeration():
    pos = torch.tensor([[1, 0, 0, 0, 0], [1, 1, 0, 0, 0]], dtype=torch.bool)
    for k in (1, 2, 3):
        exact = []
        for p in pos:
            rankings = list(itertools.combinations(range(5), k))
            exact.append(sum(any(p[j] for j in top) for top in rankings) / len(rankings))
        assert clip.chance_recall(pos, k) == pytest.approx(sum(exact) / 2)
    assert clip.chance_recall(pos, 5) == 1.0


def test_open_clip_rehearsal_builds_vit_b32_offline():
    pytest.importorskip("open_clip")
    torch.manual_seed(0)
    model, preprocess, tokenizer = clip.load_open_clip("ViT-B-32", "openai", weights=False)
    assert sum(p.numel() for p in model.parameters()) == 151_277_313  # open_clip's table: 151.28 M
    assert type(model.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"  # as OpenAI trained it
    from PIL import Image

    image = preprocess(Image.new("RGB", (40, 30), (200, 10, 10))).unsqueeze(0)
    assert image.shape == (1, 3, 224, 224)
    with torch.no_grad():
        img, txt = model.encode_image(image), model.encode_text(tokenizer(["a photo of a cat", "a dog"]))
    assert img.shape == (1, 512) and txt.shape == (2, 512)
    encode_images, encode_text = clip.open_clip_encoders(model, preprocess, tokenizer, batch_size=2)
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    emb = encode_images(images)
    with torch.no_grad():
        one = F.normalize(model.encode_image(preprocess(Image.fromarray(images[2].permute(1, 2, 0).numpy()))[None]), dim=-1)
    torch.testing.assert_close(emb[2:], one, atol=1e-5, rtol=1e-4)  # batching and conversion change nothing
    torch.testing.assert_close(encode_text(["a dog"]), F.normalize(txt[1:], dim=-1), atol=1e-5, rtol=1e-4)


def test_positives_matrix_marks_every_image_with_that_caption():
    pos = clip.positives_matrix([["a red star"], ["a red star", "a blue ring"], []], ["a blue ring", "a red star", "x"])
    assert pos.tolist() == [[False, True, False], [True, True, False], [False, False, False]]
