"""Repository contract: notebook conventions, clean notebooks, badges from one URL, env files agree."""
from __future__ import annotations

import re
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as the tomli package (pyproject)
    import tomli as tomllib

import nbformat
import pytest
import yaml

from course_utils.machinery import nbtools
from nbrun import LESSONS, ROOT

IDS = [p.stem for p in LESSONS]
CONDA_NAMES = {"pytorch": "torch"}


def _name(req: str) -> str:
    return re.split(r"[\s<>=!\[;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _conda_names(path) -> set[str]:
    """Package names of a conda environment file, its pip section included (options and `-e .` left out)."""
    deps = yaml.safe_load(path.read_text())["dependencies"]
    pip = [d for entry in deps if isinstance(entry, dict) for d in entry.get("pip", [])]
    names = {_name(d) for d in deps if isinstance(d, str)} | {_name(d) for d in pip if not d.startswith("-")}
    return {CONDA_NAMES.get(n, n) for n in names} - {"python", "pip"}


def test_lessons_exist_and_are_numbered_in_order():
    assert len(LESSONS) >= 2
    numbers = [int(p.name[:2]) for p in LESSONS]
    assert numbers == list(range(len(numbers))), f"lessons must be numbered 00, 01, ... without gaps: {numbers}"


def _applies_to_conda_python(req: str) -> bool:
    """False for a requirement whose marker leaves it out on the conda files' Python 3.11 (e.g. tomli)."""
    from packaging.requirements import Requirement
    marker = Requirement(req).marker
    return marker is None or marker.evaluate({"python_version": "3.11", "python_full_version": "3.11.0"})


def test_environment_files_name_the_same_packages():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = meta["optional-dependencies"]
    wanted = {_name(d) for d in meta["dependencies"] + extras["dev"] if _applies_to_conda_python(d)}
    site = {_name(d) for d in extras["site"]}
    assert _conda_names(ROOT / "environment.yml") == wanted | site  # the local environment builds the site too
    assert _conda_names(ROOT / "binder" / "environment.yml") == wanted  # Binder runs lessons, not the site


def test_torch_is_never_pinned_in_pyproject():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dep in meta["dependencies"]:
        if _name(dep) in ("torch", "torchvision"):
            assert ">=" in dep and "==" not in dep and "<" not in dep, f"{dep}: lower bounds only (Colab)"


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_notebook_structure(path):
    nb = nbformat.read(path, as_version=4)
    url = nbtools.repo_url()
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith(f"# {path.name[:2]} · ")
    assert nbtools.badge_line(path.name, url) in first.source, "badge line stale: run `course nb sync`"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), "first code cell must be tagged 'parameters'"
    params = {}
    exec(code[0].source, {}, params)  # plain assignments only
    assert params.get("profile") == "auto" and params.get("seed") == 0
    assert code[1].source.startswith(nbtools.setup_source(url)), "setup cell stale: run `course nb sync`"
    assert "course_utils.setup(profile, seed" in code[1].source
    assert any("course_utils.record(" in c.source for c in code), "a lesson must record its numbers"


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_notebook_is_committed_clean(path):
    assert nbtools.is_clean(path), f"{path.name} has volatile state: run `course nb clean` and commit"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.outputs:
            assert nbtools.CHECK_TAG in cell.metadata.get("tags", [])


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_graded_exercises_use_nbgrader_markup(path):
    nb = nbformat.read(path, as_version=4)
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert len(graded) >= 2, f"{path.name}: at least two graded exercises"
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids)), "grade_id values must be unique"
    for c in nb.cells:
        meta = c.metadata.get("nbgrader", {})
        if meta.get("solution") and c.cell_type == "code":
            assert "### BEGIN SOLUTION" in c.source and "### END SOLUTION" in c.source
        if meta.get("grade") and c.cell_type == "code":
            assert meta.get("points", 0) > 0 and meta.get("locked")


def test_clean_strips_volatile_state():
    nb = nbformat.v4.new_notebook()
    keep = nbformat.v4.new_code_cell("print(1)", metadata={"tags": [nbtools.CHECK_TAG], "scrolled": True})
    keep.outputs = [nbformat.v4.new_output("stream", text="1\n")]
    drop = nbformat.v4.new_code_cell("x", execution_count=4)
    drop.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "1"}, execution_count=4)]
    nb.cells = [keep, drop]
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    out = nbtools.clean(nb)
    assert out.cells[0].outputs and out.cells[0].metadata == {"tags": [nbtools.CHECK_TAG]}
    assert out.cells[0].execution_count == 1  # stable count: nbval skips compared cells without one
    assert out.cells[1].outputs == [] and out.cells[1].execution_count is None
    assert out.metadata["language_info"] == {"name": "python"}


def test_sync_rewrites_badges_and_setup_from_url():
    nb = nbformat.read(LESSONS[0], as_version=4)
    moved = nbtools.sync(nb, LESSONS[0].name, "https://github.com/someone/fork")
    assert "github/someone/fork/blob/main/student/" in moved.cells[0].source
    setup = [c for c in moved.cells if c.cell_type == "code"][1].source
    assert "repo = 'git+https://github.com/someone/fork'" in setup
    assert "cfg = course_utils.setup(profile, seed" in setup
