"""setup(): profile resolution, seeding, device choice, data directory."""
import pytest
import torch

from course_utils import config
from course_utils.config import Config, pick_device, resolve_profile, setup


def test_explicit_profile_wins(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "light")
    assert resolve_profile("full", "cpu") == ("full", "asked for in the parameters cell")


def test_env_overrides_auto(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert resolve_profile("auto", "cuda", ("cifar10",)) == ("smoke", "set by $COURSE_PROFILE")


@pytest.mark.parametrize("device,cached,online,expected", [
    ("cuda", True, False, "full"),
    ("cpu", True, False, "light"),
    ("cpu", False, True, "light"),
    ("cuda", False, False, "smoke"),
    ("cpu", False, False, "smoke"),
])
def test_auto_rules(monkeypatch, device, cached, online, expected):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.setattr(config, "_online", lambda timeout=1.5: online)
    prof, why = resolve_profile("auto", device, ("cifar10",), lambda name: cached)
    assert prof == expected
    assert why  # the banner always says why


def test_unknown_profile_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        resolve_profile("fast", "cpu")


def test_setup_seeds_and_prints_banner(capsys):
    cfg = setup("smoke", seed=3)
    a = torch.rand(3)
    setup("smoke", seed=3, quiet=True)
    assert torch.equal(a, torch.rand(3))
    out = capsys.readouterr().out
    assert "profile  smoke" in out and f"device   {pick_device()}" in out and "seed     3" in out
    assert isinstance(cfg, Config) and cfg.device == pick_device()
    assert setup("smoke", device="cpu", quiet=True).device == "cpu"  # an explicit device wins


def test_pick_returns_value_for_active_profile():
    cfg = Config("light", "", 0, "cpu", config.data_dir(), config.build_dir())
    assert cfg.pick(smoke=1, light=5, full=30) == 5
    with pytest.raises(ValueError, match="no value given for profile 'light'"):
        cfg.pick(smoke=1)


def test_smoke_uses_one_cpu_thread_unless_told(monkeypatch):
    n = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        setup("smoke", device="cpu", quiet=True)  # threads are set for CPU training only
        assert torch.get_num_threads() == 1
        setup("light", device="cpu", quiet=True)
        assert torch.get_num_threads() == config.usable_cores()
        torch.set_num_threads(1)
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        setup("light", device="cpu", quiet=True)   # the user's choice is left alone
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(n)


@pytest.fixture()
def keep_threads():
    """setup() sets torch's thread count for light/full: put it back afterwards."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_rehearsal_banner_and_config(monkeypatch, capsys, keep_threads):
    monkeypatch.delenv("COURSE_DATA_SOURCE", raising=False)
    cfg = setup("light", device="cpu", data="shapes")
    out = capsys.readouterr().out
    assert out.startswith("REHEARSAL: shapes world at real sizes, random weights")
    assert "profile  light (rehearsal) - asked for in the parameters cell" in out
    assert cfg.rehearsal and cfg.data_source == "shapes" and cfg.profile == "light"  # light's sizes: cfg.pick
    assert cfg.pick(smoke=1, light=5, full=30) == 5
    assert cfg.as_dict()["rehearsal"] is True


def test_setup_reads_the_data_source_from_the_environment(monkeypatch, capsys, keep_threads):
    monkeypatch.setenv("COURSE_DATA_SOURCE", "shapes")  # what `course run --data shapes` sets for the kernels
    assert setup("full", device="cpu", quiet=True).rehearsal
    smoke = setup("smoke", device="cpu")
    assert not smoke.rehearsal and smoke.data_source == "shapes"  # smoke is the small shapes world, not a rehearsal
    assert "REHEARSAL" not in capsys.readouterr().out
    monkeypatch.delenv("COURSE_DATA_SOURCE")
    light = setup("light", device="cpu")
    assert not light.rehearsal and light.data_source == "real"
    assert "REHEARSAL" not in capsys.readouterr().out


@pytest.mark.parametrize("cached,online", [(False, False), (True, False), (False, True)])
def test_auto_never_picks_a_rehearsal(monkeypatch, cached, online, keep_threads):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.delenv("COURSE_DATA_SOURCE", raising=False)
    monkeypatch.setattr(config, "_online", lambda timeout=1.5: online)
    monkeypatch.setattr("course_utils.data.is_cached", lambda name: cached)
    cfg = setup("auto", device="cpu", datasets=("cifar10",), quiet=True)
    assert not cfg.rehearsal  # missing data gives smoke, never light on made-up data
    assert cfg.profile == ("light" if cached or online else "smoke")


def test_setup_makes_idle_openmp_threads_sleep_unless_told():
    import subprocess
    import sys

    code = ("import os, sys, course_utils; assert 'torch' not in sys.modules; course_utils.setup('smoke', quiet=True); "
            "print(os.environ.get('OMP_WAIT_POLICY'))")
    env = {k: v for k, v in __import__("os").environ.items() if k != "OMP_WAIT_POLICY"}
    run = lambda e: subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True,  # noqa: E731
                                   check=True).stdout.strip()
    assert run(env) == "PASSIVE"  # set before torch (and its OpenMP) loads
    assert run({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"  # the user's choice wins


def test_auto_starts_no_large_download_by_itself(monkeypatch):
    """VOC (1.9 GB) not cached, network up: auto runs smoke and says how to ask for the download."""
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.delenv("COURSE_ALLOW_LARGE", raising=False)
    monkeypatch.setattr(config, "_online", lambda timeout=1.5: True)
    prof, why = config.resolve_profile("auto", "cpu", ("voc_det",), lambda name: False)
    assert prof == "smoke" and "1.9 GB" in why and "course data download voc" in why
    assert config.resolve_profile("auto", "cuda", ("voc_det",), lambda name: True)[0] == "full"  # cached: fine
    assert config.resolve_profile("auto", "cpu", ("pets",), lambda name: False)[0] == "light"  # 800 MB: fine
    monkeypatch.setenv("COURSE_ALLOW_LARGE", "1")
    assert config.resolve_profile("auto", "cpu", ("voc_det",), lambda name: False)[0] == "light"  # asked for
