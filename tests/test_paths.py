"""course_utils.paths: the data cache, the weights cache inside it, the build folder, and Colab's defaults."""
from __future__ import annotations

import os
from pathlib import Path

import torch

import course_utils.config
import course_utils.data
from course_utils import paths


def test_data_dir_env_then_colab_then_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    assert paths.data_dir() == tmp_path
    monkeypatch.delenv("COURSE_DATA")
    monkeypatch.setenv("COLAB_RELEASE_TAG", "x")
    assert paths.on_colab() and paths.data_dir() == Path("/content/data")
    monkeypatch.delenv("COLAB_RELEASE_TAG")
    monkeypatch.delitem(__import__("sys").modules, "google.colab", raising=False)
    assert not paths.on_colab() and paths.data_dir().parts[-2:] == ("cv-course", "data")


def test_build_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_BUILD", str(tmp_path / "b"))
    assert paths.build_dir() == tmp_path / "b"
    monkeypatch.delenv("COURSE_BUILD")
    assert paths.build_dir() == Path("build")


def test_weights_cache_under_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.delenv("HF_HOME", raising=False)
    assert paths.use_weights_dir() == tmp_path / "weights" / "torch" and paths.weights_dir() == tmp_path / "weights"
    assert torch.hub.get_dir() == str(tmp_path / "weights" / "torch" / "hub")  # torchvision weights land here
    monkeypatch.setenv("TORCH_HOME", "/elsewhere")
    assert str(paths.use_weights_dir()) == "/elsewhere"  # the user's choice wins


def test_old_names_still_work():
    assert course_utils.config.data_dir is paths.data_dir and course_utils.config.build_dir is paths.build_dir
    assert course_utils.data.weights_dir is paths.weights_dir
    assert course_utils.data.use_weights_dir is paths.use_weights_dir


def _unset(monkeypatch, *names):
    for var in names:  # set first, so that monkeypatch restores the test run's value (or its absence)
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)


def test_the_learners_own_weight_caches_are_left_alone(tmp_path, monkeypatch):
    """No $COURSE_DATA, not Colab: TORCH_HOME/HF_HOME stay unset (weights already in ~/.cache are reused)."""
    _unset(monkeypatch, "COURSE_DATA", "TORCH_HOME", "HF_HOME", "COLAB_RELEASE_TAG")
    monkeypatch.delitem(__import__("sys").modules, "google.colab", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert paths.use_weights_dir() == tmp_path / "cache" / "torch"
    assert "TORCH_HOME" not in os.environ and "HF_HOME" not in os.environ
    assert torch.hub.get_dir() == str(tmp_path / "cache" / "torch" / "hub")  # where torch itself looks
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # a learner's Hugging Face login lives here
    paths.use_weights_dir()
    assert os.environ["HF_HOME"] == str(tmp_path / "hf")


def test_colab_puts_weights_in_the_course_cache(monkeypatch):
    _unset(monkeypatch, "COURSE_DATA", "TORCH_HOME", "HF_HOME")
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-20260101")
    assert paths.use_weights_dir() == Path("/content/data/weights/torch")
    assert os.environ["HF_HOME"] == "/content/data/weights/huggingface"
