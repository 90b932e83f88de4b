"""Keep lesson notebooks clean and consistent: strip volatile state, refresh compared outputs, sync badges.

Conventions every lesson follows (tests/test_repo.py checks them):
  * cell 0 is markdown: the title line, then the Colab/Binder badge line (generated, see :func:`sync`);
  * the first code cell is tagged ``parameters`` and defines ``profile`` and ``seed``;
  * the next code cell is the setup cell (generated, see :func:`setup_source`);
  * only cells tagged ``nbval-check-output`` keep outputs in git, and nbval compares exactly those.
"""
from __future__ import annotations

import copy
import re
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as the tomli package (pyproject)
    import tomli as tomllib
from pathlib import Path

import nbformat

__all__ = ["CHECK_TAG", "repo_url", "repo_ref", "set_release", "badge_line", "setup_source", "clean", "clean_file", "sync", "sync_file",
           "refresh_outputs", "lesson_notebooks", "is_clean", "compare_outputs", "compared_cells"]

CHECK_TAG = "nbval-check-output"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}  # what Jupyter, Colab and Binder open
ROOT = Path(__file__).resolve().parents[2]  # the repository (course_utils/machinery/nbtools.py)
_KEEP_CELL_META = {"tags", "nbgrader", "deletable", "editable"}
_BADGE_RE = re.compile(r"^\[!\[Open in Colab\].*$", re.M)


def repo_url(root: Path = ROOT) -> str:
    """The repository URL from pyproject.toml (the only place it is written)."""
    meta = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    return meta["project"]["urls"]["Repository"].rstrip("/")


def repo_ref(root: Path = ROOT) -> str:
    """The release learners get ([tool.cv-course] release in pyproject.toml): "main" or a tag."""
    meta = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    return meta.get("tool", {}).get("cv-course", {}).get("release", "main")


_RELEASE_RE = re.compile(r'^release = "[^"]*"$', re.M)


def set_release(ref: str, root: Path = ROOT) -> None:
    """Write ``ref`` (a tag, or "main") as the release in pyproject.toml."""
    if not re.fullmatch(r"[\w.\-/]+", ref):
        raise ValueError(f"--ref {ref!r}: a git tag or branch name (letters, digits, . - _ /)")
    path = root / "pyproject.toml"
    text = path.read_text(encoding="utf-8")
    if not _RELEASE_RE.search(text):
        raise ValueError(f"{path} has no `release = \"...\"` line under [tool.cv-course]")
    path.write_text(_RELEASE_RE.sub(f'release = "{ref}"', text, count=1), encoding="utf-8")


def lesson_notebooks(root: Path = ROOT) -> list[Path]:
    """The lessons, in slide order (``notebooks/NN_topic.ipynb``)."""
    return sorted(p for p in (root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def badge_line(name: str, url: str, ref: str | None = None) -> str:
    """Colab and Binder badges that open the *student* copy of lesson ``name`` at ``ref`` (default: the release)."""
    ref = ref or repo_ref()
    gh = url.removeprefix("https://github.com/")
    colab = f"https://colab.research.google.com/github/{gh}/blob/{ref}/student/{name}"
    binder = f"https://mybinder.org/v2/gh/{gh}/{ref}?labpath=student%2F{name}"
    return (f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab}) "
            f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder})")


def setup_source(url: str, ref: str | None = None) -> str:
    """The setup cell every lesson starts with; on Colab it installs the release ``ref`` (default: pyproject's)."""
    ref = ref or repo_ref()
    pin = "" if ref == "main" else f"@{ref}"  # main: the default branch, as a plain git+URL installs it
    return (
        "# Setup: seed, device and profile, decided once. On Colab this first installs course_utils\n"
        "# from the course repository; the preinstalled torch is kept as it is.\n"
        "try:\n"
        "    import course_utils\n"
        "except ModuleNotFoundError:  # Colab, or a Python without the course installed\n"
        "    import subprocess, sys\n"
        f"    repo = 'git+{url}{pin}'\n"
        "    subprocess.check_call([sys.executable, '-m', 'pip', 'install', '-q', f'cv-course @ {repo}'])\n"
        "    import course_utils\n"
    )


def _is_setup(cell) -> bool:
    return cell.cell_type == "code" and cell.source.startswith("# Setup: seed, device and profile")


def clean(nb) -> nbformat.NotebookNode:
    """Return a copy without volatile metadata, and without outputs or counts except in compared cells."""
    nb = copy.deepcopy(nb)
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}  # every lesson: Python 3
    ordinal = 0
    for cell in nb.cells:
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in _KEEP_CELL_META}
        cell.pop("id", None)
        if cell.cell_type != "code":
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
            continue
        ordinal += 1
        cell.execution_count = None
        if CHECK_TAG not in cell.metadata.get("tags", []) or not cell.outputs:
            cell.outputs = []
            continue
        # nbval treats a cell with outputs but no count as "unrun": give compared cells a stable count.
        cell.execution_count = ordinal
        for out in cell.outputs:
            if out.get("output_type") == "execute_result":
                out["execution_count"] = ordinal
    nb.nbformat, nb.nbformat_minor = 4, 4  # no cell ids: stable diffs
    return nb


def is_clean(path: Path) -> bool:
    nb = nbformat.read(path, as_version=4)
    return nbformat.writes(clean(nb)) == nbformat.writes(nb)


def sync(nb, name: str, url: str) -> nbformat.NotebookNode:
    """Rewrite the badge line and the setup cell from the repository URL."""
    nb = copy.deepcopy(nb)
    first = nb.cells[0]
    line = badge_line(name, url)
    if _BADGE_RE.search(first.source):
        first.source = _BADGE_RE.sub(line, first.source)
    else:
        title, _, rest = first.source.partition("\n")
        first.source = f"{title}\n\n{line}\n\n{rest.lstrip()}".rstrip() + "\n"
    from .needs import datasets_of, light_peak, needs_block, replace_block, with_light_peak  # from measurements
    for cell in nb.cells:
        if _is_setup(cell):
            body = cell.source.split("    import course_utils\n", 2)[-1]
            cell.source = setup_source(url) + with_light_peak(body, light_peak(Path(name).stem))
    first.source = replace_block(first.source, needs_block(Path(name).stem, datasets_of(nb)), _BADGE_RE)
    return nb


def _write(nb, path: Path) -> bool:
    text = nbformat.writes(nb) + "\n"
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def clean_file(path: Path) -> bool:
    """Clean one notebook in place; True if it changed."""
    return _write(clean(nbformat.read(path, as_version=4)), path)


def sync_file(path: Path, url: str | None = None) -> bool:
    nb = nbformat.read(path, as_version=4)
    return _write(clean(sync(nb, path.name, url or repo_url())), path)


def refresh_outputs(path: Path, timeout: int = 300) -> None:
    """Execute a notebook in the smoke profile and store the outputs of its compared cells."""
    from nbclient import NotebookClient

    from ..host import env_var

    nb = nbformat.read(path, as_version=4)
    run = copy.deepcopy(nb)
    with env_var("COURSE_PROFILE", "smoke"):
        NotebookClient(run, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    for src, done in zip(nb.cells, run.cells):
        if src.cell_type == "code" and CHECK_TAG in src.metadata.get("tags", []):
            src.outputs = done.outputs
    _write(clean(nb), path)


# nbval's comparison (the keys it ignores, its stream handling), applied to an executed notebook we already
# have, so the suite compares the tagged cells of the papermill run instead of executing each lesson again.
_SKIP_COMPARE = ("metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
                 "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg")


def _flatten(outputs) -> dict[str, list]:
    from nbval.plugin import coalesce_streams, transform_streams_for_comparison

    flat: dict[str, list] = {}
    for out in transform_streams_for_comparison(coalesce_streams(copy.deepcopy(list(outputs)))):
        for key, value in out.items():
            if key in _SKIP_COMPARE:
                continue
            items = value.items() if key == "data" else [(key, value)]
            for k, v in items:
                if k not in _SKIP_COMPARE:
                    flat.setdefault(k, []).append("".join(v) if isinstance(v, list) else v)
    return flat


def compare_outputs(expected, actual) -> str:
    """"" when ``actual`` outputs match ``expected`` as nbval compares them (text, HTML, streams; not
    images or metadata), else a short description of the first difference."""
    exp, act = _flatten(nbformat.from_dict(expected)), _flatten(nbformat.from_dict(actual))
    if set(exp) != set(act):
        return f"output kinds differ: expected {sorted(exp)}, got {sorted(act)}"
    for key, values in exp.items():
        if values != act[key]:
            return f"{key} differs:\n--- committed\n{values}\n+++ executed\n{act[key]}"
    return ""


def compared_cells(source_nb, executed_nb):
    """(index, committed cell, executed cell) for every code cell tagged ``nbval-check-output``.

    ``executed_nb`` is the same notebook after papermill, which inserts one cell (tagged
    ``injected-parameters``) after the parameters cell; that cell is skipped when pairing.
    """
    ran = [c for c in executed_nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    if len(ran) != len(source_nb.cells):
        raise ValueError(f"executed notebook has {len(ran)} cells, the source {len(source_nb.cells)}: not the same notebook")
    for i, (src, done) in enumerate(zip(source_nb.cells, ran)):
        if src.cell_type == "code" and CHECK_TAG in src.metadata.get("tags", []):
            yield i, src, done
