"""Check a built course site in a real browser (``course site --check``, and the test suite).

Opens every page of the site in headless Chromium (Debian's ``chromium``, driven by Playwright's Python
API; Playwright's own browser download is never used) from ``file://`` URLs, and reports per page:

* console errors, uncaught page errors, failed requests, and any request that leaves the site (the
  site must be readable offline);
* maths that MathJax did not render;
* images that did not load;
* internal links whose target file does not exist;
* Colab/Binder badges that do not point at an existing ``student/`` notebook;
* content wider than the window (a table or figure running off the right edge), at 1280 and 800 px.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

__all__ = ["find_chromium", "PageReport", "check_site", "WIDTHS"]

WIDTHS = (1280, 800)  # window widths a page must fit: a laptop, and a narrow window beside a notebook

_MATH = "span.math.notranslate, div.math.notranslate"  # Sphinx's maths; MathJax adds its own inside
_MATH_DONE = """() => !window.MathJax || !MathJax.startup ? false :
  MathJax.startup.promise.then(() => true, () => false)"""
_PAGE_FACTS = """() => ({
  math: document.querySelectorAll('%s').length,
  rendered: Array.from(document.querySelectorAll('%s')).filter(e => e.querySelector('mjx-container svg')).length,
  images: Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0]),
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href')),
  overflow: document.documentElement.scrollWidth - window.innerWidth,
})""" % (_MATH, _MATH)


def find_chromium() -> str | None:
    """Path of a system Chromium (``chromium``, ``chromium-browser`` or ``google-chrome``), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


@dataclass
class PageReport:
    """What one page did in the browser; ``problems`` empty means it passed."""

    page: str
    problems: list[str] = field(default_factory=list)
    math: int = 0
    images: int = 0
    links: int = 0


def _student_target(href: str, repo: Path) -> Path | None:
    """The student notebook a Colab/Binder badge link opens, or None if ``href`` is no badge link."""
    if "colab.research.google.com/github/" in href:
        rel = href.split("/blob/main/", 1)[-1]
    elif "mybinder.org/v2/gh/" in href and "labpath=" in href:
        rel = unquote(href.split("labpath=", 1)[1].split("&", 1)[0])
    else:
        return None
    return repo / rel


def _check_links(page: Path, hrefs: list[str], repo: Path, report: PageReport) -> None:
    for href in hrefs:
        target = _student_target(href, repo)
        if target is not None:
            if not (target.parent.name == "student" and target.exists()):
                rel = target.relative_to(repo) if target.is_relative_to(repo) else target
                report.problems.append(f"badge link {href} opens {rel}, which is not an existing student/ notebook")
            continue
        url = urlparse(href)
        if url.scheme in ("http", "https", "mailto") or href.startswith("#") or not url.path:
            continue
        if not (page.parent / unquote(url.path)).resolve().exists():
            report.problems.append(f"broken link {href}")


def check_site(site: Path, repo: Path, pages: list[str] | None = None, timeout_ms: int = 30000) -> list[PageReport]:
    """Open each page (default: every ``*.html`` at the site's top level) and report what went wrong."""
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError("no Chromium found: install Debian's `chromium` package (apt-get install chromium)")
    site = site.resolve()
    names = pages or sorted(p.name for p in site.glob("*.html"))
    reports = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            for name in names:
                report = PageReport(name)
                page = browser.new_page()
                page.on("console", lambda m, r=report: m.type == "error" and r.problems.append(f"console error: {m.text}"))
                page.on("pageerror", lambda e, r=report: r.problems.append(f"page error: {e}"))
                page.on("requestfailed", lambda q, r=report: r.problems.append(f"failed request: {q.url} ({q.failure})"))
                page.on("request", lambda q, r=report: not q.url.startswith(("file://", "data:", "about:", "blob:"))
                        and r.problems.append(f"request leaves the site: {q.url}"))
                page.goto((site / name).as_uri(), wait_until="load", timeout=timeout_ms)
                if page.evaluate(f"() => document.querySelectorAll('{_MATH}').length") and not page.evaluate(_MATH_DONE):
                    report.problems.append("page has maths but MathJax did not load")
                page.wait_for_load_state("networkidle", timeout=timeout_ms)
                facts = page.evaluate(_PAGE_FACTS)
                report.math, report.images, report.links = facts["math"], len(facts["images"]), len(facts["links"])
                if facts["rendered"] < facts["math"]:
                    report.problems.append(f"{facts['math'] - facts['rendered']} of {facts['math']} maths not rendered")
                report.problems += [f"image did not load: {src}" for src, ok in facts["images"] if not ok]
                for width in WIDTHS:
                    page.set_viewport_size({"width": width, "height": 800})
                    wider = page.evaluate(_PAGE_FACTS)["overflow"]
                    if wider > 1:
                        report.problems.append(f"content runs {wider} px past the right edge of a {width} px window")
                _check_links(site / name, facts["links"], repo, report)
                page.close()
                reports.append(report)
        finally:
            browser.close()
    return reports
