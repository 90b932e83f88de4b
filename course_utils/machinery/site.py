"""The course site (``course site``): the executed lessons with their figures, readable offline.

    course site                    # run the lessons that have no executed copy yet, then build build/site/
    course site --no-solutions     # the same, with each answer replaced by the learner's stub

Built with Jupyter Book 1.x (Sphinx, myst-nb, sphinx-book-theme), which works offline. Every page is an
executed lesson from ``build/executed/`` (what ``course run`` writes), prepared for readers:

* hidden tests are cut out of the test cells (their visible part and its ✓ line stay);
* each answer is folded behind a "Show solution" toggle, or replaced by the stub with ``--no-solutions``;
* papermill's injected parameters cell goes; a note under the title says which profile, device and
  versions the page was executed with, when, and how long it took;
* the Colab/Binder badges are drawn from local files (their links still open the ``student/`` copies);
* MathJax 3 (its one-file TeX-to-SVG bundle, from the ``django-static-mathjax`` package) is served from
  the site itself and needs no web fonts, so no page fetches anything from outside to be readable, even
  opened from disk.

The front page lists the lessons in the deck's order; ``report.html`` shows the last run report.
"""
from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .nbtools import lesson_notebooks
from ..record import MIME

__all__ = ["mathjax_file", "strip_hidden_tests", "page_notebook", "execution_note", "stage_book", "build_site", "SiteResult"]

_HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS[ \t]*\n?", re.S | re.M)
_HINT = re.compile(r"^[ \t]*# HINT:.*\n?", re.M)
_SOLUTION_MARK = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.M)
_BADGES = {"https://colab.research.google.com/assets/colab-badge.svg": "badges/colab.svg",
           "https://mybinder.org/badge_logo.svg": "badges/binder.svg"}
_WIDGET = "application/vnd.jupyter.widget-view+json"
_BADGE_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="20" role="img" aria-label="{text}">'
              '<rect rx="3" width="{w}" height="20" fill="{bg}"/><text x="{x}" y="14" fill="#fff" '
              'font-family="DejaVu Sans,Verdana,sans-serif" font-size="11" text-anchor="middle">{text}</text></svg>')


def mathjax_file() -> Path:
    """MathJax 3's single-file TeX-to-SVG bundle, from the ``django-static-mathjax`` package (data only, no Django)."""
    import importlib.util

    spec = importlib.util.find_spec("mathjax")
    path = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" / "es5" / "tex-svg.js" if spec else None
    if path is None or not path.is_file():
        raise RuntimeError("MathJax for the offline site is missing: pip install django-static-mathjax "
                           "(it comes with `pip install -e \".[dev]\"`)")
    return path


def strip_hidden_tests(source: str) -> str:
    """A test cell's source without its ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` part."""
    return _HIDDEN.sub("", source).rstrip() + "\n"


def _nbgrader(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def execution_note(nb) -> str:
    """One line on how a lesson was executed: the setup banner's profile/device/versions and papermill's timing."""
    banner: dict[str, str] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = out.get("text", "")
            for line in ("".join(text) if isinstance(text, list) else text).splitlines():
                key, _, value = line.partition(" ")
                if key in ("profile", "device", "seed", "versions") and key not in banner:
                    banner[key] = " ".join(value.split())
    pm = nb.metadata.get("papermill", {})
    when = (pm.get("end_time") or "")[:16].replace("T", " ")
    took = f", in {pm['duration']:.0f} s" if isinstance(pm.get("duration"), (int, float)) else ""
    if not banner:
        return f"Not executed with the course's setup cell{took}."
    return (f"Executed with profile **{banner.get('profile', '?')}**; device {banner.get('device', '?')}; "
            f"seed {banner.get('seed', '?')}; {banner.get('versions', '')}"
            + (f"; on {when} UTC" if when else "") + f"{took}.")


def _markdown(source: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_markdown_cell(source)
    cell.pop("id", None)  # lessons are nbformat 4.4 (no cell ids)
    return cell


def _solution_markdown(source: str, kind: str) -> str:
    body = _SOLUTION_MARK.sub("", _HINT.sub("", source)).strip("\n")  # hints are for the stubs
    if kind == "code":
        body = f"```python\n{body}\n```"
    return f":::{{dropdown}} Show solution\n{body}\n:::\n"


def page_notebook(executed, student=None, solutions: bool = True) -> nbformat.NotebookNode:
    """An executed lesson prepared for the site (see the module docstring); the input is not modified.

    ``student`` is the learner copy (``student/NN_topic.ipynb``), whose stubs replace the answers when
    ``solutions`` is False.
    """
    nb = copy.deepcopy(executed)
    stubs = {_nbgrader(c).get("grade_id"): c.source for c in (student.cells if student else []) if _nbgrader(c)}
    cells = []
    for cell in nb.cells:
        meta = _nbgrader(cell)
        if "injected-parameters" in cell.metadata.get("tags", []):
            continue
        if meta.get("solution"):
            if solutions:
                cell = _markdown(_solution_markdown(cell.source, cell.cell_type))
            elif meta.get("grade_id") in stubs:
                cell.source, cell.outputs = stubs[meta["grade_id"]], [] if cell.cell_type == "code" else None
                if cell.outputs is None:
                    del cell["outputs"]
            else:
                raise ValueError(f"no stub for answer cell {meta.get('grade_id')}: pass the student copy")
        elif meta.get("grade") and cell.cell_type == "code":
            cell.source = strip_hidden_tests(cell.source)
        if cell.cell_type == "code":  # the HTML beside a recorded number is what readers see; widgets need a CDN
            for out in cell.outputs:
                for key in (MIME, _WIDGET):
                    out.get("data", {}).pop(key, None)
            cell.outputs = [o for o in cell.outputs if "data" not in o or o["data"]]
        cells.append(cell)
    nb.metadata.pop("widgets", None)
    title = cells[0]
    for url, local in _BADGES.items():
        title.source = title.source.replace(url, local)
    note = _markdown(f":::{{note}}\n{execution_note(executed)}\n:::\n")
    nb.cells = [title, note, *cells[1:]]
    for cell in nb.cells:  # papermill writes nbformat 4.5 (cell ids); pages need none
        cell.pop("id", None)
    nb.nbformat_minor = 4
    return nb


@dataclass
class SiteResult:
    """A built site: where its front page is, how many HTML pages, how long the build took."""

    index: Path
    pages: int
    seconds: float


def _lesson_summary(nb, readme: str = "") -> tuple[str, str]:
    """(title, one line on what the lesson builds): the README's lessons table, else the first sentence."""
    lines = nb.cells[0].source.splitlines()
    title = lines[0].lstrip("# ").strip()
    number = title[:2]
    for row in readme.splitlines():
        cols = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cols) == 3 and cols[0] == number:
            return title, cols[2]
    paras = [p.strip() for p in "\n".join(lines[1:]).split("\n\n") if p.strip() and "![" not in p]
    first = " ".join(paras[0].split()) if paras else ""
    return title, first.split(". ")[0].rstrip(".") + "." if first else ""


_CONF = """# Generated by `course site`: do not edit. The Jupyter Book 1.x stack (Sphinx, myst-nb,
# sphinx-book-theme), configured directly: no launch buttons, no Thebe, nothing loaded from outside.
project = "Hands-on computer vision"
author = "The course team"
html_title = project
extensions = ["myst_nb", "sphinx_design", "sphinx_copybutton", "sphinx_book_theme"]
exclude_patterns = ["_build", "_offline", "**.ipynb_checkpoints"]
root_doc = "index"
myst_enable_extensions = ["colon_fence", "dollarmath", "amsmath", "html_image"]
nb_execution_mode = "off"
nb_output_stderr = "remove"              # warnings printed while the lesson ran are not lesson content
suppress_warnings = ["myst.domains"]
html_theme = "sphinx_book_theme"
html_theme_options = {"show_navbar_depth": 1, "use_download_button": False, "use_fullscreen_button": False,
                      "use_repository_button": False, "navigation_with_keys": False}
html_context = {"default_mode": "light"}
html_extra_path = ["_offline"]           # MathJax from the django-static-mathjax package, served by the site itself
mathjax_path = "mathjax/tex-svg.js"     # MathJax 3, SVG output: no web fonts to fetch, works from file://
html_show_sourcelink = False
html_copy_source = False
"""


def site_report(executed: list[Path], runs: dict[str, dict[str, float]] | None = None) -> str:
    """The report page's HTML: a row per executed lesson (linked to its page) and the seconds chart."""
    from ..record import load_ranges
    from .report import RANGES, result_from_executed
    from .report_html import report_table, seconds_chart

    ranges = load_ranges(RANGES) if RANGES.exists() else {}
    results = [result_from_executed(p, ranges) for p in executed]
    mine = {}
    for r in results:
        mine.setdefault(f"{r.profile or '?'} (these pages)", {})[r.name] = round(r.seconds, 1)
    return (report_table(results, ranges, link=lambda name: f"{name}.html")
            + "<h2>Seconds per lesson</h2>" + seconds_chart({**mine, **(runs or {})}))


def stage_book(src: Path, executed_dir: Path, solutions: bool = True, report_html: str | None = None,
               lessons: list[Path] | None = None) -> list[str]:
    """Write the Jupyter Book source for the site into ``src``; return the lesson page names.

    ``report_html`` is the report page's body (default: :func:`site_report` of the executed lessons).
    """
    lessons = lesson_notebooks() if lessons is None else lessons
    shutil.rmtree(src, ignore_errors=True)
    (src / "badges").mkdir(parents=True)
    (src / "badges" / "colab.svg").write_text(_BADGE_SVG.format(w=117, x=58, bg="#e37400", text="Open in Colab"))
    (src / "badges" / "binder.svg").write_text(_BADGE_SVG.format(w=97, x=48, bg="#579aca", text="launch Binder"))
    (src / "_offline" / "_static" / "mathjax").mkdir(parents=True)
    shutil.copy2(mathjax_file(), src / "_offline" / "_static" / "mathjax" / "tex-svg.js")
    pages, rows = [], []
    readme = lessons[0].parent.parent / "README.md" if lessons else None
    readme_text = readme.read_text(encoding="utf-8") if readme is not None and readme.exists() else ""
    for lesson in lessons:
        executed = executed_dir / lesson.name
        if not executed.exists():
            raise FileNotFoundError(f"{executed} is missing: run `course run` (or `course site --run`) first")
        nb = nbformat.read(executed, as_version=4)
        student_path = lesson.parent.parent / "student" / lesson.name
        student = nbformat.read(student_path, as_version=4) if student_path.exists() else None
        nbformat.write(page_notebook(nb, student, solutions), src / lesson.name)
        title, summary = _lesson_summary(nb, readme_text)
        rows.append(f"| [{title}]({lesson.stem}.ipynb) | {summary} |")
        pages.append(lesson.stem)
    intro = ["# Hands-on computer vision", "",
             "Executed lessons, from images as tensors to CLIP, in the order of the lecture deck. Every "
             "page was run by the course's own tests or `course run`; the note under each title says with "
             "which profile and versions. Open a lesson's exercises in Colab or Binder with its badges.", "",
             "| lesson | what you build |", "|---|---|", *rows, "",
             "The [run report](report.md) shows each lesson's status, time and key numbers against their "
             "expected ranges." + ("" if solutions else " Solutions are not included in this build."), ""]
    report = report_html if report_html is not None else site_report([executed_dir / p.name for p in lessons])
    (src / "report.md").write_text(f"# Run report\n\n```{{raw}} html\n{report}\n```\n", encoding="utf-8")
    toctree = ["```{toctree}", ":hidden:", ":maxdepth: 1", "", *pages, "report", "```", ""]
    (src / "index.md").write_text("\n".join(intro + toctree), encoding="utf-8")
    (src / "conf.py").write_text(_CONF)
    return pages


def build_site(executed_dir: Path, out: Path, solutions: bool = True, report_html: str | None = None,
               lessons: list[Path] | None = None, quiet: bool = True) -> SiteResult:
    """Stage the book next to ``out`` and build it with Jupyter Book; the site's pages end up in ``out``."""
    t0 = time.perf_counter()
    src = out.with_name(out.name + "-src")
    stage_book(src, executed_dir, solutions, report_html, lessons)
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going", "-d", str(src / "_doctrees"),
           str(src), str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the site build failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    pages = sum(1 for _ in out.glob("*.html"))
    if not quiet:
        print(f"site: {out / 'index.html'} ({pages} pages, {time.perf_counter() - t0:.0f} s)")
    return SiteResult(out / "index.html", pages, time.perf_counter() - t0)
