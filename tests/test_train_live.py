"""Live curves (one display, replaced, throttled; off outside a kernel) and runs that survive a disconnect:
``cfg.run_dir`` keys a checkpoint folder by the run's settings, and an interrupted run resumed there ends
with the same weights and History as one that never stopped."""
from __future__ import annotations

import importlib

import pytest
import torch

from course_utils import runs
from course_utils.config import Config
from course_utils.train import History, fit
from course_utils.train import live as live_module
from course_utils.train.live import LiveCurves, in_notebook, live_default
from test_train_fit import CtrlC, loaders, tiny

pytestmark = pytest.mark.usefixtures("one_thread")
fit_module = importlib.import_module("course_utils.train.fit")  # the module; `fit` is the function


class FakeHandle:
    def __init__(self):
        self.shown = []

    def update(self, obj):
        self.shown.append(obj)


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def curves(clock, min_interval=1.0):
    c = LiveCurves.__new__(LiveCurves)  # as __init__, without a kernel to display into
    c.min_interval, c.clock, c.draws, c.handle, c._last = min_interval, clock, 0, FakeHandle(), clock()
    return c


def test_live_curves_replace_one_display_at_most_once_per_interval():
    clock, h = FakeClock(), History()
    c = curves(clock)
    assert not c.update(h, final=True)  # nothing to draw before the first epoch
    h.append({"epoch": 1, "train_loss": 2.0, "val_loss": 2.1, "val_acc": 0.2})
    clock.t = 0.5
    assert not c.update(h)  # too soon after the start
    clock.t = 1.2
    assert c.update(h)
    h.append({"epoch": 2, "train_loss": 1.5, "val_loss": 1.7, "val_acc": 0.4})
    clock.t = 1.5
    assert not c.update(h) and c.update(h, final=True)  # the end is always drawn
    assert c.draws == 2 and len(c.handle.shown) == 2  # the same handle, updated: one output in the cell
    last = c.handle.shown[-1]
    assert [ln.get_label() for ln in last.axes[0].get_lines()] == ["train_loss", "val_loss"]
    assert list(last.axes[0].get_lines()[0].get_xdata()) == [1, 2]  # the final figure has every epoch


def test_live_is_off_in_scripts_and_tests_and_follows_the_switch(monkeypatch):
    monkeypatch.delenv("COURSE_LIVE", raising=False)
    assert not in_notebook() and not live_default(quiet=False)
    monkeypatch.setenv("COURSE_LIVE", "1")
    assert live_default(quiet=True)
    monkeypatch.setenv("COURSE_LIVE", "0")
    assert not live_default(quiet=False)
    monkeypatch.setenv("COURSE_LIVE", "yes")
    with pytest.raises(ValueError, match="COURSE_LIVE"):
        live_default(quiet=False)


def test_fit_updates_the_live_display_each_epoch_in_a_notebook(monkeypatch):
    made = []

    class Recorder(LiveCurves):
        def __init__(self):
            self.epochs_seen = []
            made.append(self)

        def update(self, history, final=False):
            self.epochs_seen.append((len(history), final))
            return True

    monkeypatch.setattr(fit_module, "LiveCurves", Recorder)
    monkeypatch.setattr(fit_module, "in_notebook", lambda: True)
    monkeypatch.setattr(live_module, "in_notebook", lambda: True)
    monkeypatch.delenv("COURSE_LIVE", raising=False)
    train, val = loaders()
    fit(tiny(), train, val, epochs=3, lr=0.05, device="cpu", quiet=False, seed=0)
    assert len(made) == 1 and made[0].epochs_seen == [(1, False), (2, False), (3, False), (3, True)]
    made.clear()
    fit(tiny(), train, val, epochs=1, lr=0.05, device="cpu", quiet=True, seed=0)  # quiet: no curves by default
    assert made == []
    fit(tiny(), train, val, epochs=1, lr=0.05, device="cpu", quiet=True, live=True, seed=0)
    assert len(made) == 1
    monkeypatch.setattr(fit_module, "in_notebook", lambda: False)
    monkeypatch.setattr(live_module, "in_notebook", lambda: False)
    made.clear()
    fit(tiny(), train, val, epochs=1, lr=0.05, device="cpu", quiet=True, live=True, seed=0)  # a script: nowhere to draw
    assert made == []


def _cfg(tmp_path, profile="light", seed=0):
    return Config(profile=profile, reason="test", seed=seed, device="cpu", data_dir=tmp_path, build_dir=tmp_path)


def test_run_dir_is_keyed_by_settings_and_none_in_smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_RUNS", str(tmp_path / "runs"))
    cfg = _cfg(tmp_path)
    a = cfg.run_dir("07_resnet/recipe", {"epochs": 5, "lr": 0.1})
    assert a.parent == tmp_path / "runs" / "07_resnet" and a.name.startswith("recipe-")
    assert a == cfg.run_dir("07_resnet/recipe", {"lr": 0.1, "epochs": 5})  # same settings, same folder
    assert a != cfg.run_dir("07_resnet/recipe", {"epochs": 6, "lr": 0.1})  # a changed setting: a fresh run
    assert a != _cfg(tmp_path, seed=1).run_dir("07_resnet/recipe", {"epochs": 5, "lr": 0.1})
    assert a != _cfg(tmp_path, profile="full").run_dir("07_resnet/recipe", {"epochs": 5, "lr": 0.1})
    assert _cfg(tmp_path, profile="smoke").run_dir("07_resnet/recipe", {}) is None
    with pytest.raises(ValueError, match="run name"):
        cfg.run_dir("../elsewhere", {})


def test_runs_go_to_drive_on_colab_when_mounted_else_the_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_RUNS", raising=False)
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "cache"))
    assert runs.runs_dir() == tmp_path / "cache" / "runs"
    assert "drive.mount" not in runs.checkpoint_note()
    monkeypatch.setenv("COLAB_RELEASE_TAG", "test")
    drive = tmp_path / "drive" / "MyDrive"
    assert runs.runs_dir(drive) == tmp_path / "cache" / "runs"  # Drive not mounted yet
    assert "drive.mount('/content/drive')" in runs.checkpoint_note()  # the banner says how
    drive.mkdir(parents=True)
    assert runs.runs_dir(drive) == drive / "cv-course" / "runs"


def test_an_interrupted_run_resumed_from_run_dir_ends_as_if_never_stopped(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_RUNS", str(tmp_path / "runs"))
    kw = dict(epochs=3, lr=0.05, device="cpu", quiet=True, seed=0)
    where = _cfg(tmp_path).run_dir("test/tiny", {"epochs": 3, "lr": 0.05})
    straight_model = tiny()
    straight = fit(straight_model, *loaders(), **kw)

    train, val = loaders()
    stopped = fit(tiny(), CtrlC(train, at_pass=1, at_batch=1), val, checkpoint_dir=where, resume=True, **kw)
    assert stopped.interrupted and len(stopped) == 1 and (where / "last.pt").exists()
    resumed_model = tiny(seed=99)  # a new session: other weights and RNG state until the checkpoint loads
    resumed = fit(resumed_model, *loaders(), checkpoint_dir=where, resume=True, **kw)
    assert not resumed.interrupted and resumed["epoch"] == [1, 2, 3]
    for col in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
        assert resumed[col] == pytest.approx(straight[col], rel=1e-6, abs=1e-7), col
    for p, q in zip(resumed_model.state_dict().values(), straight_model.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


# lessons whose light/full runs train for minutes: each keeps checkpoints and resumes when re-run
CHECKPOINTED = ("05_cnns_alexnet", "06_vgg", "07_resnet", "08_transfer_learning", "09_localization", "10_detection",
                "11_segmentation", "12_robustness", "13_self_supervised", "14_transformers_vit", "15_clip")


@pytest.mark.parametrize("lesson", CHECKPOINTED)
def test_lessons_that_train_for_minutes_resume_when_re_run(lesson):
    import nbformat
    from pathlib import Path

    nb = nbformat.read(Path(__file__).parents[1] / "notebooks" / f"{lesson}.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert f'checkpoint_dir=cfg.run_dir(f"{lesson}/' in code or f'checkpoint_dir=cfg.run_dir("{lesson}/' in code
    assert code.count("checkpoint_dir=cfg.run_dir(") <= code.count("resume=True")


def test_in_a_real_kernel_the_cell_keeps_one_figure_the_final_curves(tmp_path):
    """As papermill and the site see it: the display is replaced in place, so one image output remains."""
    import nbformat
    from nbclient import NotebookClient

    code = ("import torch, sys; sys.path.insert(0, {tests!r})\n"
            "from test_train_fit import loaders, tiny\n"
            "from course_utils.train import fit\n"
            "h = fit(tiny(), *loaders(), epochs=3, lr=0.05, device='cpu', quiet=True, live=True, seed=0)\n"
            "print(len(h))").format(tests=str(__import__("pathlib").Path(__file__).parent))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outs = nb.cells[0].outputs
    images = [o for o in outs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(images) == 1, [o.output_type for o in outs]
    assert not any("first epoch is training" in str(o.get("data", {})) for o in outs)  # the placeholder was replaced
    assert any(o.output_type == "stream" and o.text.strip() == "3" for o in outs)
