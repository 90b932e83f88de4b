"""The course site: pages prepared for readers (no hidden tests, folded or absent solutions), the whole
site built from the lessons this test session executed, and every page checked in headless Chromium."""
from __future__ import annotations

import html

import os
import re
import sys
from pathlib import Path

import nbformat
import pytest

from course_utils.machinery.grading.student import student_copy
from course_utils.record import MIME
from course_utils.machinery.site import build_site, execution_note, page_notebook, stage_book, strip_hidden_tests
from course_utils.machinery.sitecheck import check_site, find_chromium
from nbrun import LESSONS, ROOT, executed_lessons

sys.path.insert(0, str(Path(__file__).parent))
from fixtures.grading_lesson import lesson  # noqa: E402

HIDDEN_LINE = "odd = torch.randn(3, 5, 7)"  # from the fixture's hidden tests


def _executed_fixture():
    """The fixture lesson as papermill leaves it: injected parameters, banner, a recorded number, a widget."""
    nb = lesson()
    injected = nbformat.v4.new_code_cell('profile = "smoke"', metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(2, injected)
    setup = nb.cells[3]
    setup.outputs = [nbformat.v4.new_output("stream", name="stdout", text=(
        "profile  smoke  - asked for in the parameters cell\ndevice   cpu, 1 CPU threads\nseed     0\n"
        "versions python 3.11.7, torch 2.14.1, numpy 2.4.6\n"))]
    setup.outputs.append(nbformat.v4.new_output("display_data", data={
        MIME: {"name": "acc", "value": 0.5}, "text/html": "<table>acc</table>", "text/plain": "acc"}))
    setup.outputs.append(nbformat.v4.new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text/plain": "progress"}))
    nb.metadata["papermill"] = {"duration": 12.3, "end_time": "2026-11-29T13:51:04.1+00:00"}
    nb.metadata["widgets"] = {"state": {}}
    return nb


def _text(nb) -> str:
    """Every source and output text of a notebook, as a reader would see it."""
    parts = [c.source for c in nb.cells]
    for c in nb.cells:
        for out in c.get("outputs", []):
            parts += [out.get("text", ""), *map(str, out.get("data", {}).keys()), *map(str, out.get("data", {}).values())]
    return "\n".join(parts)


def test_hidden_tests_are_cut_and_visible_checks_stay():
    src = next(c.source for c in lesson().cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex1-flip-test")
    out = strip_hidden_tests(src)
    assert HIDDEN_LINE not in out and "HIDDEN" not in out
    assert "expect_shape(out, (2, size, size))" in out


def test_page_with_solutions_folds_them_and_drops_what_readers_should_not_see():
    page = page_notebook(_executed_fixture(), student_copy(lesson()))
    text = _text(page)
    assert HIDDEN_LINE not in text and "BEGIN SOLUTION" not in text and "# HINT" not in text
    assert ":::{dropdown} Show solution\n```python\ndef flip_h" in text  # folded, still readable
    assert "Each column goes to the mirrored place and back." in text  # the model answer, folded too
    assert 'profile = "smoke"' not in text  # papermill's injected cell
    assert MIME not in text and "widget-view" not in text and "widgets" not in page.metadata
    assert "progress" in text  # a widget's plain-text fallback stays
    assert "badges/colab.svg" in page.cells[0].source and "colab-badge.svg" not in page.cells[0].source
    assert "/student/98_grading_fixture.ipynb" in page.cells[0].source  # the badge still opens the learner copy
    assert page.cells[1].source.startswith(":::{note}\nExecuted with profile **smoke")


def test_page_without_solutions_shows_the_stubs():
    text = _text(page_notebook(_executed_fixture(), student_copy(lesson()), solutions=False))
    assert "torch.flip(x, dims=[-1])" not in text and "img.mean().item()" not in text
    assert "mirrored place" not in text
    assert "raise NotImplementedError('Hint: torch.flip along the last dimension')" in text
    with pytest.raises(ValueError, match="no stub"):
        page_notebook(_executed_fixture(), None, solutions=False)


def test_execution_note_reads_the_banner_and_papermill_timing():
    note = execution_note(_executed_fixture())
    assert note.startswith("Executed with profile **smoke - asked for in the parameters cell**; device cpu")
    assert "torch 2.14.1" in note and "on 2026-11-29 13:51 UTC, in 12 s" in note
    assert execution_note(lesson()).startswith("Not executed")


def test_staged_book_without_solutions_has_no_solution_text(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbformat.write(lesson(), folder / "98_grading_fixture.ipynb")
    (tmp_path / "student").mkdir()
    nbformat.write(student_copy(lesson()), tmp_path / "student" / "98_grading_fixture.ipynb")
    executed = tmp_path / "executed"
    executed.mkdir()
    nbformat.write(_executed_fixture(), executed / "98_grading_fixture.ipynb")
    pages = stage_book(tmp_path / "src", executed, solutions=False, report_html="<p>r</p>",
                       lessons=[folder / "98_grading_fixture.ipynb"])
    assert pages == ["98_grading_fixture"]
    staged = "".join(_text(nbformat.read(p, as_version=4)) for p in (tmp_path / "src").glob("*.ipynb"))
    assert "torch.flip(x, dims=[-1])" not in staged and HIDDEN_LINE not in staged
    index = (tmp_path / "src" / "index.md").read_text()
    assert "Solutions are not included" in index and "98_grading_fixture" in index
    assert (tmp_path / "src" / "_offline" / "_static" / "mathjax" / "tex-svg.js").stat().st_size > 1e6
    with pytest.raises(FileNotFoundError, match="course run"):
        stage_book(tmp_path / "src2", tmp_path / "nothing", lessons=[folder / "98_grading_fixture.ipynb"])


# ---- the browser ----------------------------------------------------------------------------------------
needs_browser = pytest.mark.skipif(
    find_chromium() is None, reason="no Chromium installed: `apt-get install chromium` to run the browser tests "
                                    "(.ci/run installs it where it can)")


@needs_browser
def test_browser_check_reports_each_kind_of_problem(tmp_path):
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / "01_x.ipynb").write_text("{}")
    site = tmp_path / "site"
    site.mkdir()
    (site / "ok.html").write_text(
        "<html><body><a href='bad.html#x'>next</a><a href='https://example.org'>out</a>"
        "<a href='https://colab.research.google.com/github/a/b/blob/main/student/01_x.ipynb'>c</a></body></html>")
    (site / "bad.html").write_text(
        "<html><body><img src='missing.png'><a href='nowhere.html'>x</a>"
        "<a href='https://mybinder.org/v2/gh/a/b/main?labpath=student%2F02_gone.ipynb'>b</a>"
        "<script src='https://cdn.example.org/x.js'></script><script>console.error('boom')</script>"
        "<span class='math notranslate'>\\(x^2\\)</span><table><tr><td style='white-space:nowrap'>"
        + "wide " * 300 + "</td></tr></table></body></html>")
    reports = {r.page: r for r in check_site(site, tmp_path, timeout_ms=15000)}
    assert reports["ok.html"].problems == []
    bad = "\n".join(reports["bad.html"].problems)
    for expected in ("image did not load: missing.png", "broken link nowhere.html", "student/02_gone.ipynb",
                     "request leaves the site: https://cdn.example.org/x.js", "console error: boom",
                     "MathJax did not load", "past the right edge of a 1280 px window"):
        assert expected in bad, f"{expected!r} not reported in:\n{bad}"


@pytest.fixture(scope="module")
def site(request, tmp_path_factory):
    """The site built from this session's executed lessons (waits for the workers that run them)."""
    executed = executed_lessons(request.session)
    out = Path(os.environ["COURSE_BUILD"]) / "site"
    result = build_site(executed, out)
    print(f"site built in {result.seconds:.0f} s: {result.pages} pages")
    return out


def page_text(page_html: str) -> str:
    """What a reader sees of a page: tags stripped (Pygments wraps every token of a code line in a <span>),
    entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", page_html))


def _long_lines(source: str) -> list[str]:
    return [ln for ln in (ln.strip() for ln in source.splitlines()) if len(ln) > 25]  # specific to that cell


def test_page_text_finds_a_highlighted_code_line():
    """The search below can fail: a line Pygments split into spans is found once the tags are stripped."""
    line = 'expect_close(flip_h(odd), odd.numpy()[..., ::-1].copy())'
    highlighted = ('<span class="n">expect_close</span><span class="p">(</span><span class="n">flip_h</span>'
                   '<span class="p">(</span><span class="n">odd</span><span class="p">),</span> <span class="n">odd'
                   '</span><span class="o">.</span><span class="n">numpy</span><span class="p">()[</span>'
                   '<span class="o">...</span><span class="p">,</span> <span class="p">::</span><span class="o">-'
                   '</span><span class="mi">1</span><span class="p">]</span><span class="o">.</span><span class="n">'
                   'copy</span><span class="p">())</span>')
    assert line not in highlighted and line in page_text(highlighted)


def test_site_has_a_page_per_lesson_without_hidden_tests(site):
    for path in LESSONS:
        page = site / f"{path.stem}.html"
        assert page.exists(), f"no page for {path.stem}"
        raw = page.read_text(encoding="utf-8")
        text = page_text(raw)
        source = nbformat.read(path, as_version=4)
        # a hidden line that the lesson also shows elsewhere (a shared `with by_hand(...)` line) proves nothing
        shown = {ln for c in source.cells for ln in _long_lines(
            re.sub(r"### BEGIN HIDDEN TESTS\n.*?### END HIDDEN TESTS", "", c.source, flags=re.S))}
        visible_found = 0
        for cell in source.cells:
            hidden_blocks = re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", cell.source, re.S)
            for hidden in hidden_blocks:
                for line in _long_lines(hidden):
                    if not any(line in seen for seen in shown):
                        assert line not in text, f"{path.stem}: hidden test line on the site: {line}"
            if hidden_blocks:  # the visible part of the same test cell is on the page: the search works here
                visible = re.sub(r"### BEGIN HIDDEN TESTS\n.*?### END HIDDEN TESTS", "", cell.source, flags=re.S)
                visible_found += any(line in text for line in _long_lines(visible))
        tests = sum(1 for c in source.cells if "### BEGIN HIDDEN TESTS" in c.source)
        assert visible_found == tests, f"{path.stem}: the visible part of {tests - visible_found} test cells not found"
        graded = sum(1 for c in source.cells if c.metadata.get("nbgrader", {}).get("solution"))
        assert raw.count("Show solution") >= graded, f"{path.stem}: {graded} answers, not all folded"
    assert (site / "index.html").exists() and (site / "report.html").exists()


@needs_browser
def test_every_page_works_offline_in_a_browser(site):
    reports = check_site(site, ROOT)
    assert len(reports) >= len(LESSONS) + 2
    bad = {r.page: r.problems for r in reports if r.problems}
    assert not bad, "\n".join(f"{page}: {problems}" for page, problems in bad.items())
    assert sum(r.math for r in reports) > 0 and sum(r.images for r in reports) > 0


def test_front_page_line_comes_from_the_readme_table_else_the_first_sentence():
    from course_utils.machinery.site import _lesson_summary

    nb = lesson()
    readme = "| # | notebook | what you build |\n|---|---|---|\n| 98 | [x](notebooks/98_x.ipynb) | flips and means |\n"
    assert _lesson_summary(nb, readme) == ("98 · Grading fixture", "flips and means")
    assert _lesson_summary(nb, "") == ("98 · Grading fixture", "A tiny lesson for the grading tests.")
