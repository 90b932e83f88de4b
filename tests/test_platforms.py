"""Where learners run: the GPU Colab lends (a T4), conda's environment file, Python 3.10's missing tomllib."""
from __future__ import annotations

import re

import pytest
import torch
import yaml

from course_utils.train import amp_dtype
from nbrun import ROOT


@pytest.mark.parametrize("capability, expected", [
    ((7, 5), torch.float16),   # T4 (Colab's free GPU): bf16 would be emulated, slowly
    ((7, 0), torch.float16),   # V100
    ((6, 1), torch.float16),   # Pascal
    ((8, 0), torch.bfloat16),  # A100
    ((8, 6), torch.bfloat16),  # RTX 30xx, A10
    ((9, 0), torch.bfloat16),  # H100
])
def test_mixed_precision_follows_the_compute_capability(monkeypatch, capability, expected):
    asked = []

    def capability_of(device=None):
        asked.append(device)
        return capability
    monkeypatch.setattr(torch.cuda, "get_device_capability", capability_of)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # what a T4 answers: ignored
    assert amp_dtype("cuda") == expected
    assert amp_dtype("cuda:1", "auto") == expected
    assert asked == [None, torch.device("cuda:1")]  # the GPU that trains is the one asked
    assert amp_dtype("cuda", False) is None and amp_dtype("cuda", "bf16") == torch.bfloat16  # choices win


def test_fp16_training_gets_a_gradient_scaler(monkeypatch):
    """Below 8.0 fit() trains in fp16 with a GradScaler; forced on the CPU here so the path runs."""
    from course_utils.train import fit

    made = []
    real = torch.amp.GradScaler

    class Spy(real):
        def __init__(self, *args, **kwargs):
            made.append(args)
            super().__init__(*args, **kwargs)
    monkeypatch.setattr(torch.amp, "GradScaler", Spy)
    x, y = torch.randn(16, 4), torch.arange(16) % 2
    data = list(zip(x.split(8), y.split(8)))
    model = torch.nn.Sequential(torch.nn.Linear(4, 2))
    fit(model, data, epochs=1, lr=0.05, device="cpu", amp="fp16", seed=0, quiet=True)
    assert made == [("cpu",)]
    made.clear()
    fit(model, data, epochs=1, lr=0.05, device="cpu", amp="bf16", seed=0, quiet=True)
    assert made == []  # bf16 has fp32's range: no scaler


def _pip_section(path) -> list[str]:
    deps = yaml.safe_load(path.read_text())["dependencies"]
    return [line for entry in deps if isinstance(entry, dict) for line in entry.get("pip", [])]


@pytest.mark.parametrize("name", ["environment.yml", "binder/environment.yml"])
def test_conda_pip_section_is_a_valid_requirements_file(tmp_path, name):
    """conda writes the pip section to a requirements file for `pip install -r`: pip's own parser must take it."""
    from pip._internal.network.session import PipSession
    from pip._internal.req.constructors import install_req_from_parsed_requirement
    from pip._internal.req.req_file import parse_requirements

    lines = _pip_section(ROOT / name)
    req = tmp_path / "requirements.txt"
    req.write_text("\n".join(lines) + "\n")
    parsed = [install_req_from_parsed_requirement(r) for r in parse_requirements(str(req), session=PipSession())]
    assert len(parsed) == len(lines)  # every line is a requirement: no option that would change how pip runs


def test_pip_parser_rejects_what_conda_used_to_be_given(tmp_path):
    from pip._internal.exceptions import RequirementsFileParseError
    from pip._internal.network.session import PipSession
    from pip._internal.req.req_file import parse_requirements

    req = tmp_path / "requirements.txt"
    req.write_text("--no-deps\n-e .\n")
    with pytest.raises(RequirementsFileParseError, match="no-deps"):
        list(parse_requirements(str(req), session=PipSession()))


def test_course_utils_reads_toml_without_tomllib(monkeypatch):
    """Python 3.10 has no tomllib: the modules that read TOML fall back to tomli (a dependency there)."""
    import importlib
    import sys

    pytest.importorskip("tomli")
    record = importlib.import_module("course_utils.record")  # the module (course_utils.record is its function)

    monkeypatch.setitem(sys.modules, "tomllib", None)  # import tomllib now raises ModuleNotFoundError
    try:
        fresh = importlib.reload(record)
        assert fresh.tomllib.__name__ == "tomli"
    finally:
        monkeypatch.undo()
        importlib.reload(record)


def test_every_lesson_names_its_kernel():
    """Jupyter, Colab and Binder open a notebook in the kernel its metadata names (`course nb clean` sets it)."""
    import nbformat

    from course_utils.machinery.nbtools import lesson_notebooks

    for path in lesson_notebooks():
        spec = nbformat.read(path, as_version=4).metadata.get("kernelspec", {})
        assert spec.get("name") == "python3" and spec.get("language") == "python", path.name


def test_each_lesson_says_what_it_needs_from_the_measurement_files():
    import nbformat

    from course_utils.machinery import needs
    from course_utils.machinery.nbtools import lesson_notebooks

    for path in lesson_notebooks():
        nb = nbformat.read(path, as_version=4)
        found = needs.BLOCK_RE.findall(nb.cells[0].source)
        want = needs.needs_block(path.stem, needs.datasets_of(nb))
        assert found == [want], f"{path.name}: block stale or missing: run `course nb sync`"


def test_each_lesson_passes_its_measured_light_peak_to_setup():
    """auto on a small machine (Binder) needs the lesson's light peak: the setup call carries the measured one."""
    import nbformat

    from course_utils.machinery import needs
    from course_utils.machinery.nbtools import _is_setup, lesson_notebooks

    for path in lesson_notebooks():
        setup = next(c.source for c in nbformat.read(path, as_version=4).cells if _is_setup(c))
        peak = needs.light_peak(path.stem)
        assert needs.with_light_peak(setup, peak) == setup, f"{path.name}: setup call stale: run `course nb sync`"
        assert (f"light_peak_mib={peak})" in setup) == (peak is not None), path.name


def test_with_light_peak_adds_replaces_and_removes_the_argument():
    from course_utils.machinery.needs import with_light_peak

    src = 'cfg = course_utils.setup(profile, seed, datasets=("pets_seg",))\nprint(cfg)\n'
    added = with_light_peak(src, 1875)
    assert added == 'cfg = course_utils.setup(profile, seed, datasets=("pets_seg",), light_peak_mib=1875)\nprint(cfg)\n'
    assert with_light_peak(added, 1200) == added.replace("1875", "1200")
    assert with_light_peak(added, None) == src


@pytest.mark.parametrize("peak, memory_gib, requested, device, expected", [
    (1875, 2, "auto", "cpu", "smoke"),    # Binder: light would not fit beside the server
    (1400, 2, "auto", "cpu", "light"),    # fits in 2 GiB - 0.5
    (1875, 24, "auto", "cpu", "light"),   # a laptop
    (1875, 2, "light", "cpu", "light"),   # asked for: tried anyway
    (1875, 2, "auto", "cuda", "full"),    # a GPU machine runs full (its own memory question)
    (None, 2, "auto", "cpu", "light"),    # unmeasured: no guess
])
def test_auto_picks_a_profile_that_fits_the_memory(monkeypatch, peak, memory_gib, requested, device, expected):
    from course_utils.config import resolve_profile

    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    prof, why = resolve_profile(requested, device, (), None, light_peak_mib=peak, memory_bytes=memory_gib << 30)
    assert prof == expected
    if (requested, device, prof) == ("auto", "cpu", "smoke"):
        assert "1.8 GiB of memory (measured)" in why and "allows 2.0 GiB" in why and "profile='light'" in why


def test_needs_block_reads_minutes_memory_and_sizes(tmp_path):
    import json

    from course_utils.machinery import needs

    (tmp_path / "rehearse-light.json").write_text(json.dumps({
        "seconds": {"07_a": 240.0, "11_b": 300.0}, "peak_rss_mib": {"07_a": 1300, "11_b": 1700}}))
    (tmp_path / "rehearse-full.json").write_text(json.dumps({"seconds": {"07_a": 600.0}}))
    a = needs.needs_block("07_a", ["cifar10"], tmp_path)
    assert "CIFAR-10 163 MB" in a and "4.0 min, peak memory 1.27 GiB" in a and "10.0 min on a GPU" in a
    assert "runs on: Binder, Colab" in a
    b = needs.needs_block("11_b", ["pets_seg"], tmp_path)
    assert "Oxford-IIIT Pet 800 MB" in b and "Binder in smoke (auto's choice: light's kernel needs 1.66 GiB" in b
    assert "unmeasured" in b
    c = needs.needs_block("10_c", ["voc_det"], tmp_path)
    assert "1.9 GB" in c and "Binder in smoke" in c and "time unmeasured, peak memory unmeasured" in c
    old = "# T\n\n[![Open in Colab](x)](y)\n\n" + b + "\n\nText."
    assert needs.replace_block(old, a, re.compile(r"^\[!\[Open in Colab\].*$", re.M)) == old.replace(b, a)


def test_one_release_drives_badges_and_the_colab_install(tmp_path):
    from course_utils.machinery import nbtools

    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    assert nbtools.repo_ref(tmp_path) == nbtools.repo_ref() == "main"
    nbtools.set_release("v2026.1", tmp_path)
    assert nbtools.repo_ref(tmp_path) == "v2026.1"
    assert nbtools.repo_url(tmp_path) == nbtools.repo_url()  # only the release line changed
    url = nbtools.repo_url()
    line = nbtools.badge_line("07_resnet.ipynb", url, "v2026.1")
    assert "/blob/v2026.1/student/07_resnet.ipynb" in line and "/v2026.1?labpath=student%2F07_resnet" in line
    assert f"repo = 'git+{url}@v2026.1'" in nbtools.setup_source(url, "v2026.1")
    assert f"repo = 'git+{url}'\n" in nbtools.setup_source(url, "main")
    with pytest.raises(ValueError, match="tag or branch"):
        nbtools.set_release("v1; rm -rf", tmp_path)


def test_badges_command_needs_a_ref(capsys):
    from course_utils.machinery.cli import main

    assert main(["nb", "badges"]) == 2 and "--ref TAG" in capsys.readouterr().out
