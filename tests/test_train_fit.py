"""fit: schedules and optimizers, History, checkpoint + exact resume, best-by-metric, early stop, Ctrl-C."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.train import History, TensorLoader, fit, load_checkpoint, make_optimizer, make_schedule


# Tiny models run faster on one thread, and do not fight other processes for the cores.
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.2),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3))


def loaders(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.randint(0, 128, (n, 3, 8, 8), dtype=torch.uint8, generator=g)
    x += (y * 40).view(-1, 1, 1, 1).to(torch.uint8)  # a class-dependent brightness to learn
    train = TensorLoader(x, y, 8, augment=True, seed=1)
    val = TensorLoader(x[:16], y[:16], 16, shuffle=False)
    return train, val


def test_history_rows_columns_plot_and_table():
    train, val = loaders()
    h = fit(tiny(), train, val, epochs=2, lr=0.05, device="cpu", quiet=True, config={"profile": "smoke"})
    assert isinstance(h, History) and len(h) == 2
    assert h["epoch"] == [1, 2]
    for col in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_s"):
        assert len(h[col]) == 2, col
    assert h.last["images_per_s"] == pytest.approx(48 / h.last["seconds"])
    assert h.config["profile"] == "smoke" and h.config["epochs"] == 2 and h.config["task"] == "classification"
    assert h.env["torch"] == torch.__version__ and h.device.startswith("cpu") and h.seconds > 0
    fig = h.plot()
    labels = [[ln.get_label() for ln in ax.get_lines()] for ax in fig.axes]
    assert labels == [["train_loss", "val_loss"], ["train_acc", "val_acc"]]
    assert "<table>" in h._repr_html_() and "val_acc" in h._repr_html_() and "val_acc" in repr(h)
    with pytest.raises(KeyError, match="columns"):
        h["val_top5"]


def test_schedules_and_optimizers():
    model = tiny()
    sgd = make_optimizer("sgd", model, 0.1)
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["nesterov"]
    assert [g["weight_decay"] for g in sgd.param_groups] == [5e-4, 0.0]  # no decay on biases/norms
    assert isinstance(make_optimizer("adamw", model, 0.1), torch.optim.AdamW)
    lrs = {}
    for name in ("onecycle", "cosine", "constant"):
        opt = make_optimizer("sgd", model, 0.1)
        sched = make_schedule(name, opt, 0.1, 20)
        seen = []
        for _ in range(20):
            seen.append(opt.param_groups[0]["lr"])
            opt.step()
            if sched:
                sched.step()
        lrs[name] = seen
    assert lrs["constant"] == [0.1] * 20
    assert lrs["cosine"][0] == pytest.approx(0.1) and lrs["cosine"][-1] < 0.01
    peak = max(lrs["onecycle"])
    assert peak == pytest.approx(0.1, rel=0.05) and lrs["onecycle"][0] < 0.01 and lrs["onecycle"][-1] < 0.01
    with pytest.raises(ValueError, match="schedule"):
        make_schedule("linear", opt, 0.1, 10)
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer("lamb", model, 0.1)


def test_seed_makes_runs_repeatable():
    c, d = tiny(3), tiny(3)
    torch.rand(3)  # disturb the global RNG between the runs: fit(seed=...) must reset it
    fit(c, loaders()[0], epochs=1, lr=0.05, device="cpu", quiet=True, seed=5)
    fit(d, loaders()[0], epochs=1, lr=0.05, device="cpu", quiet=True, seed=5)
    for p, q in zip(c.state_dict().values(), d.state_dict().values()):
        assert torch.equal(p, q)


def _same(m1, m2):
    return all(torch.equal(p, q) for p, q in zip(m1.state_dict().values(), m2.state_dict().values()))


class CtrlC:
    """Wraps a loader and raises KeyboardInterrupt at batch ``at_batch`` of pass ``at_pass`` (0-based)."""

    def __init__(self, loader, at_pass, at_batch):
        self.loader, self.at_pass, self.at_batch, self.passes = loader, at_pass, at_batch, 0

    def __len__(self):
        return len(self.loader)

    def set_epoch(self, epoch):
        self.loader.set_epoch(epoch)

    def __iter__(self):
        for i, batch in enumerate(self.loader):
            if self.passes == self.at_pass and i == self.at_batch:
                raise KeyboardInterrupt
            yield batch
        self.passes += 1


# dropout, augmentation, EMA, momentum, onecycle and BatchNorm: all must survive the restart
KW = dict(lr=0.05, device="cpu", quiet=True, seed=0, ema=0.9, task="classification")


def test_ctrl_c_returns_the_history_so_far_and_keeps_the_last_checkpoint(tmp_path, capsys):
    train, val = loaders()
    h = fit(tiny(), CtrlC(train, at_pass=1, at_batch=3), val, epochs=3, checkpoint_dir=tmp_path, **KW)
    assert h.interrupted and h["epoch"] == [1]
    assert "interrupted during epoch 2" in capsys.readouterr().out
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    assert state["epoch"] == 0 and state["config"]["epochs"] == 3 and state["history"]["rows"][0]["epoch"] == 1


def test_resume_gives_the_same_weights_as_never_stopping(tmp_path):
    straight = tiny()
    train, val = loaders()
    h_straight = fit(straight, train, val, epochs=2, **KW)

    train, val = loaders()
    stopped = fit(tiny(), CtrlC(train, at_pass=1, at_batch=2), val, epochs=2, checkpoint_dir=tmp_path, **KW)
    assert stopped.interrupted and len(stopped) == 1

    resumed = tiny(seed=123)  # as in a new session: other weights, other RNG state
    torch.rand(7)
    train, val = loaders()
    h = fit(resumed, train, val, epochs=2, checkpoint_dir=tmp_path, resume=True, **KW)
    assert _same(resumed, straight)
    assert h["epoch"] == [1, 2] and not h.interrupted
    assert h["val_loss"] == pytest.approx(h_straight["val_loss"], rel=1e-6)

    again = tiny(seed=5)  # a finished run resumes to "nothing to do" and keeps its weights
    fit(again, *loaders(), epochs=2, checkpoint_dir=tmp_path, resume=True, **KW)
    assert _same(again, straight)


def test_best_checkpoint_follows_the_metric(tmp_path):
    train, val = loaders()
    h = fit(tiny(), train, val, epochs=4, lr=0.05, device="cpu", quiet=True, seed=0, checkpoint_dir=tmp_path,
            best_metric="val_loss")
    best_epoch = min(range(4), key=lambda i: h["val_loss"][i]) + 1
    assert h.best == {"metric": "val_loss", "value": min(h["val_loss"]), "epoch": best_epoch}
    best = torch.load(tmp_path / "best.pt", weights_only=False)
    assert best["epoch"] + 1 == best_epoch
    model = tiny(seed=9)
    load_checkpoint(tmp_path / "best.pt", model=model)
    from course_utils.train import evaluate
    res = evaluate(model, val, {}, "cpu", loss_fn=nn.CrossEntropyLoss())
    assert res["loss"] == pytest.approx(min(h["val_loss"]))


def test_early_stop_after_patience_epochs_without_improvement():
    train, val = loaders()
    # lr 0 and no BatchNorm statistics: nothing changes after epoch 1, so patience 2 stops after epoch 3
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3))
    h = fit(model, train, val, epochs=10, lr=0.0, schedule="constant", device="cpu", quiet=True,
            early_stop=2, best_metric="val_acc")
    assert h["epoch"] == [1, 2, 3] and h.best["epoch"] == 1


def test_fit_accepts_a_dataloader_and_its_own_optimizer():
    x = torch.randn(32, 3, 8, 8)
    y = torch.randint(0, 3, (32,))
    dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8, shuffle=True)
    model = tiny()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    h = fit(model, dl, dl, epochs=2, lr=1e-3, optimizer=opt, schedule="cosine", device="cpu", quiet=True)
    assert h.config["optimizer"] == "Adam" and h.config["task"] == "classification"
    assert h["lr"][-1] < 1e-3 * 0.01
