"""Binder and Colab, checked as far as this machine allows: binder/ parses and works in a fresh virtual
environment, and a lesson's setup cell installs course_utils where torch is already installed, without
touching torch (as on Colab)."""
from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

from course_utils.machinery.nbtools import setup_source
from nbrun import ROOT

BINDER = ROOT / "binder"


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the test run's Python settings (PYTHONPATH, the venv)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(extra)
    return env


def test_binder_files_parse_and_are_executable():
    env = yaml.safe_load((BINDER / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"] and any(str(d).startswith("pytorch") for d in env["dependencies"])
    for script in ("postBuild", "start"):
        path = BINDER / script
        assert os.access(path, os.X_OK), f"binder/{script} must be executable (repo2docker runs it)"
        _run(["bash", "-n", str(path)])
    env = {k: v for k, v in _clean_env().items() if k != "COURSE_PROFILE"}  # the test run sets smoke
    out = _run(["bash", str(BINDER / "start"), "env"], env=env).stdout
    lines = out.splitlines()
    assert "OMP_WAIT_POLICY=PASSIVE" in lines
    assert not any(line.startswith("COURSE_PROFILE=") for line in lines)  # auto decides (no 1.9 GB surprise)


def test_postbuild_installs_course_utils_in_a_fresh_virtual_environment(tmp_path):
    repo = tmp_path / "repo"
    _run(["git", "clone", "-q", str(ROOT), str(repo)])
    venv.create(tmp_path / "venv", with_pip=True)
    bin_dir = tmp_path / "venv" / "bin"
    env = _clean_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", PIP_DISABLE_PIP_VERSION_CHECK="1")
    _run(["bash", str(repo / "binder" / "postBuild")], cwd=repo, env=env)
    where = _run([str(bin_dir / "python"), "-c", "import course_utils; print(course_utils.__file__)"],
                 env=env, cwd=tmp_path).stdout.strip()
    assert Path(where).is_relative_to(repo), f"course_utils imported from {where}, not the clone"


def test_setup_cell_installs_course_utils_and_leaves_torch_alone(tmp_path):
    """A fresh environment that already has torch (here: this one's packages, added by a .pth file, but not
    course_utils, whose editable hook such a path does not run) runs a lesson's setup cell, pointed at a
    local clone instead of the repository URL."""
    import torch

    repo = tmp_path / "repo"
    _run(["git", "clone", "-q", str(ROOT), str(repo)])
    venv.create(tmp_path / "venv", with_pip=True)
    py = tmp_path / "venv" / "bin" / "python"
    site_dir = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    ours = next(p for p in sys.path if p.endswith("site-packages") and Path(p, "torch").is_dir())
    Path(site_dir, "preinstalled.pth").write_text(ours + "\n")
    env = _clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1")
    probe = "import importlib.util as u; print(u.find_spec('course_utils') is None, u.find_spec('torch').origin)"
    before = _run([str(py), "-c", probe], env=env, cwd=tmp_path).stdout.split()
    assert before == ["True", torch.__file__], f"the fresh environment is not as intended: {before}"
    # PEP 508 wants a host in a git+file URL
    cell = setup_source(f"file://localhost{repo}") + "print(course_utils.__file__)\nimport torch; print(torch.__file__)\n"
    out = _run([str(py), "-c", cell], env=env, cwd=tmp_path).stdout.split()
    assert Path(out[-2]).is_relative_to(tmp_path / "venv"), f"course_utils not installed into the environment: {out}"
    assert out[-1] == torch.__file__, "the setup cell changed which torch is imported"
    mine = Path(site_dir)
    assert not (mine / "torch").exists() and not list(mine.glob("torch-*.dist-info")), "torch was reinstalled"
