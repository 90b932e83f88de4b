"""train_one_epoch / evaluate / predict against a hand-written loop, and every switchable branch of the loop."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from course_utils.train import EMA, TensorLoader, amp_dtype, evaluate, fit, predict, train_one_epoch


# Tiny models run faster on one thread, and do not fight other processes for the cores.
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(num_classes=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(16, num_classes))


def data(n=24, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, classes, (n,), generator=g)


def batches(x, y, bs=8):
    return list(zip(x.split(bs), y.split(bs)))


def test_train_one_epoch_equals_the_hand_written_loop():
    x, y = data()
    ref, model = tiny(), tiny()
    opt_ref = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    for xb, yb in batches(x, y):  # the loop of lesson 02
        loss = nn.functional.cross_entropy(ref(xb), yb)
        opt_ref.zero_grad()
        loss.backward()
        opt_ref.step()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    res = train_one_epoch(model, batches(x, y), opt, nn.CrossEntropyLoss(), "cpu", quiet=True)
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q)
    assert res["images"] == 24 and res["loss"] > 0 and res["seconds"] > 0


def test_evaluate_and_predict_match_direct_computation():
    x, y = data()
    model = tiny().eval()
    with torch.no_grad():
        logits = model(x)
    res = evaluate(model, batches(x, y), {"acc": lambda o, t: (o.argmax(1) == t).float().mean()}, "cpu",
                   loss_fn=nn.CrossEntropyLoss())
    assert res["loss"] == pytest.approx(nn.functional.cross_entropy(logits, y).item(), rel=1e-5)
    assert res["acc"] == pytest.approx((logits.argmax(1) == y).float().mean().item())
    torch.testing.assert_close(predict(model, x, batch_size=5), logits)
    torch.testing.assert_close(predict(model, batches(x, y)), logits)


def test_amp_choice():
    assert amp_dtype("cpu") is None  # off on CPU unless asked
    assert amp_dtype("cpu", True) == torch.bfloat16
    assert amp_dtype("cpu", "fp16") == torch.float16
    assert amp_dtype("cuda", False) is None
    with pytest.raises(ValueError, match="amp"):
        amp_dtype("cpu", "int8")


def _record_dtype(model):
    seen = []
    model[-1].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    return seen


def test_cpu_bf16_autocast_branch():
    x, y = data()
    model = tiny()
    seen = _record_dtype(model)
    fit(model, TensorLoader((x * 30 + 128).clamp(0, 255).to(torch.uint8), y, 8), epochs=1, lr=0.05,
        device="cpu", amp="bf16", quiet=True)
    assert seen and all(d == torch.bfloat16 for d in seen)
    seen.clear()
    fit(model, TensorLoader((x * 30 + 128).clamp(0, 255).to(torch.uint8), y, 8), epochs=1, lr=0.05,
        device="cpu", quiet=True)  # default: no autocast on CPU
    assert seen and all(d == torch.float32 for d in seen)


def test_fp16_grad_scaler_branch_steps_once_per_batch():
    x, y = data()
    model = tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    steps = []
    opt.register_step_post_hook(lambda *a: steps.append(1))
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 8)
    before = copy.deepcopy(model.state_dict())
    train_one_epoch(model, batches(x, y), opt, nn.CrossEntropyLoss(), "cpu", amp=torch.float16,
                    scaler=scaler, quiet=True)
    assert len(steps) == 3  # torchvision's reference once stepped twice per batch under AMP
    assert scaler.get_scale() > 0
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_channels_last_reaches_model_and_input():
    x, y = data()
    model = tiny()
    layouts = []
    nhwc = torch.channels_last
    model[0].register_forward_pre_hook(lambda m, i: layouts.append(i[0].is_contiguous(memory_format=nhwc)))
    fit(model, batches(x, y), epochs=1, lr=0.05, device="cpu", channels_last=True, quiet=True)
    assert layouts and all(layouts)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_compile_is_wired_through_torch_compile(monkeypatch):
    # the real inductor backend takes ~20 s for a tiny model on this CPU: check the wiring with dynamo + eager
    calls = []
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda m, **kw: calls.append(kw) or real(m, **kw))
    x, y = data()
    h = fit(tiny(), batches(x, y), batches(x, y), epochs=1, lr=0.05, device="cpu",
            compile={"backend": "eager"}, quiet=True)
    assert calls == [{"backend": "eager"}]
    assert h.config["compile"] is True and h.last["train_loss"] > 0


def test_label_smoothing_changes_the_loss_as_cross_entropy_does():
    x, y = data()
    model = tiny()
    with torch.no_grad():
        expect = nn.functional.cross_entropy(model(x[:8]), y[:8], label_smoothing=0.2).item()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the loss of the first batch is the whole story
    h = fit(model, batches(x[:8], y[:8]), epochs=1, lr=0.0, optimizer=opt, schedule="constant",
            label_smoothing=0.2, device="cpu", quiet=True)
    assert h.last["train_loss"] == pytest.approx(expect, rel=1e-5)
    with pytest.raises(ValueError, match="label_smoothing"):
        fit(tiny(), batches(x, y), epochs=1, lr=0.1, loss=nn.CrossEntropyLoss(), label_smoothing=0.1, quiet=True)


def test_ema_is_the_exponential_average_of_the_weights_after_each_step():
    x, y = data()
    model = tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    snapshots = [copy.deepcopy(model.state_dict())]
    opt.register_step_post_hook(lambda *a: snapshots.append(copy.deepcopy(model.state_dict())))
    ema = EMA(model, decay=0.5)
    train_one_epoch(model, batches(x, y), opt, nn.CrossEntropyLoss(), "cpu", ema=ema, quiet=True)
    for k, v in ema.model.state_dict().items():
        expect = snapshots[0][k].float()
        for snap in snapshots[1:]:
            expect = 0.5 * expect + 0.5 * snap[k].float()
        torch.testing.assert_close(v.float(), expect)


def test_fit_with_ema_evaluates_and_returns_the_averaged_weights():
    x, y = data()
    model = tiny()
    h = fit(model, batches(x, y), batches(x, y), epochs=2, lr=0.05, ema=0.9, device="cpu", quiet=True)
    res = evaluate(model, batches(x, y), {}, "cpu", loss_fn=nn.CrossEntropyLoss())
    assert res["loss"] == pytest.approx(h.last["val_loss"], rel=1e-5)  # model now holds the EMA weights


def test_tta_flip_averages_the_logits_of_the_flipped_image():
    x, y = data()
    model = tiny().eval()
    with torch.no_grad():
        expect = (model(x) + model(x.flip(-1))) / 2
    torch.testing.assert_close(predict(model, x, tta_flip=True), expect)
    acc = evaluate(model, batches(x, y), {"acc": lambda o, t: (o.argmax(1) == t).float().mean()}, "cpu",
                   tta_flip=True)["acc"]
    assert acc == pytest.approx((expect.argmax(1) == y).float().mean().item())


# ---- bad input: a clear error on the first batch --------------------------------------------------

def _fit(model, loader, **kw):
    return fit(model, loader, epochs=1, lr=0.05, device="cpu", quiet=True, **kw)


def test_wrong_number_of_classes():
    x, _ = data()
    y = torch.arange(24) % 5  # labels 0..4, model has 3 outputs
    with pytest.raises(ValueError, match="wrong number of classes.*at least 5 outputs"):
        _fit(tiny(3), batches(x, y))


def test_negative_labels_and_float_labels():
    x, y = data()
    with pytest.raises(ValueError, match="label is -1"):
        _fit(tiny(), batches(x, y - 1))
    with pytest.raises(TypeError, match="int64.*long"):
        _fit(tiny(), batches(x, y.float()), task="classification")
    with pytest.raises(TypeError, match="int32.*long"):
        _fit(tiny(), batches(x, y.int()))


def test_channels_last_input_and_uint8_input():
    x, y = data()
    with pytest.raises(ValueError, match="channels last.*permute"):
        _fit(tiny(), batches(x.permute(0, 2, 3, 1), y))
    with pytest.raises(TypeError, match="float"):
        _fit(tiny(), batches((x * 50).to(torch.uint8), y))


def test_empty_loader():
    with pytest.raises(ValueError, match="no batches"):
        _fit(tiny(), [])
    with pytest.raises(ValueError, match="no batches"):
        train_one_epoch(tiny(), [], torch.optim.SGD(tiny().parameters(), lr=0.1), nn.CrossEntropyLoss(), "cpu")


def test_nan_loss_on_the_first_batch():
    x, y = data()
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        _fit(tiny(), batches(x, y))
    model = tiny()
    with torch.no_grad():
        model[-1].bias.fill_(float("inf"))
    with pytest.raises(FloatingPointError, match="loss is nan"):
        _fit(model, batches(data()[0], y))


def test_nan_later_in_training_names_the_learning_rate():
    x, y = data(n=8 * 25)
    with pytest.raises(FloatingPointError, match="learning rate"):
        fit(tiny(), batches(x * 1e4, y), epochs=1, lr=1e6, schedule="constant", device="cpu", quiet=True)
