"""The run report as something to look at: one row per lesson, each number drawn against its range.

Everything is inline HTML and SVG (no scripts, no external files), so the same fragment serves
``build/report.html`` (``course run``) and the site's report page (``course site``):

* :func:`marker_svg` - a small bar: the expected range in grey, the value as a dot (green inside,
  red outside), e.g. ``val_acc 0.71 in [0.5, 0.95]``;
* :func:`report_table` - lesson link, status, seconds, and the lesson's numbers as markers;
* :func:`seconds_chart` - seconds per lesson for each profile that has been run (matplotlib, as SVG).
"""
from __future__ import annotations

import html
import io
import math
import re
from typing import Callable

from ..record import format_range

__all__ = ["marker_svg", "report_table", "chart_bars", "seconds_chart", "STYLE"]

STYLE = """<style>
.course-report{border-collapse:collapse;font-size:0.9em;width:100%}
.course-report tr.numbers td{border-top:none;padding-bottom:8px}
.course-report tr.head td{border-bottom:none}
.course-report td,.course-report th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
.course-report .ok{color:#1a7f37;font-weight:bold}.course-report .bad{color:#cf222e;font-weight:bold}
.course-metric{display:inline-block;margin:1px 10px 1px 0;white-space:nowrap;font-family:monospace;font-size:0.85em}
.course-metric.long{white-space:normal;overflow-wrap:anywhere}
.course-report-wrap{overflow-x:auto;max-width:100%}
.course-metric svg{vertical-align:middle;margin-left:4px}
</style>"""
_W, _H = 120, 14


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return html.escape(str(v))


def marker_svg(value, spec: dict) -> str:
    """An inline SVG bar: the range ``spec`` (min/max, one side open) in grey, ``value`` as a dot."""
    if "equals" in spec or not _num(value) or not ({"min", "max"} & set(spec)):
        ok = value == spec.get("equals", value)
        colour = "#1a7f37" if ok else "#cf222e"
        return (f'<svg width="{_H}" height="{_H}" role="img" aria-label="{"matches" if ok else "differs"}">'
                f'<circle cx="7" cy="7" r="5" fill="{colour}"/></svg>')
    lo, hi = spec.get("min"), spec.get("max")
    ends = [v for v in (lo, hi, value) if v is not None]
    span = (max(ends) - min(ends)) or abs(value) or 1.0
    left, right = min(ends) - 0.25 * span, max(ends) + 0.25 * span  # open sides run to the edge
    x = lambda v: 4 + (_W - 8) * (v - left) / (right - left)  # noqa: E731
    band_lo, band_hi = x(lo) if lo is not None else 0, x(hi) if hi is not None else _W
    inside = (lo is None or value >= lo) and (hi is None or value <= hi)
    colour = "#1a7f37" if inside else "#cf222e"
    label = f"{_fmt(value)} {'in' if inside else 'outside'} {format_range(spec)}"
    return (f'<svg width="{_W}" height="{_H}" role="img" aria-label="{html.escape(label)}">'
            f'<title>{html.escape(label)}</title>'
            f'<line x1="0" y1="7" x2="{_W}" y2="7" stroke="#ddd"/>'
            f'<rect x="{band_lo:.1f}" y="3" width="{max(1.0, band_hi - band_lo):.1f}" height="8" fill="#bbb" rx="2"/>'
            f'<circle cx="{x(value):.1f}" cy="7" r="4" fill="{colour}" stroke="#fff"/></svg>')


def _metrics_cell(metrics: dict, expected: dict) -> str:
    parts = []
    for name, value in metrics.items():
        spec = expected.get(name)
        mark = marker_svg(value, spec) if spec else ""
        shown = _fmt(value) if not isinstance(value, list) else html.escape(str(value))
        cls = "course-metric long" if len(name) + len(shown) > 48 else "course-metric"  # long lists may wrap
        parts.append(f'<span class="{cls}">{html.escape(name)} = {shown}{mark}</span>')
    return " ".join(parts) or "-"


def report_table(results: list, ranges: dict, link: Callable[[str], str | None] = lambda name: None) -> str:
    """HTML table: one row per :class:`~course_utils.machinery.report.NotebookResult`; ``link(name)`` gives its page."""
    rows = []
    for r in results:
        status = html.escape(r.status + (f": {r.error}" if r.error else ""))
        status += "".join(f"<br>{html.escape(p)}" for p in r.problems)  # checked against ``ranges`` already
        href = link(r.name)
        name = f'<a href="{html.escape(href)}">{html.escape(r.name)}</a>' if href else html.escape(r.name)
        cls = "ok" if r.status == "ok" else "bad"
        label = getattr(r, "profile_label", None) or r.profile or "-"  # e.g. "light (rehearsal)"
        rows.append(f"<tr class='head'><td>{name}</td><td>{html.escape(label)}</td><td>{html.escape(r.device or '-')}</td>"
                    f"<td>{r.seconds:.1f}</td><td class='{cls}'>{status}</td></tr>"  # its numbers: a full-width row below
                    f"<tr class='numbers'><td colspan='5'>{_metrics_cell(r.metrics, r.expected(ranges))}</td></tr>")
    head = "".join(f"<th>{h}</th>" for h in ("lesson", "profile", "device", "seconds", "status"))
    head += "</tr><tr><th colspan='5'>numbers the lesson recorded (dot: value; grey: expected range)</th>"
    ok = sum(r.status == "ok" for r in results)
    return (f"{STYLE}<p>{ok} of {len(results)} lessons ok.</p>"
            f'<div class="course-report-wrap"><table class="course-report"><tr>{head}</tr>{"".join(rows)}</table></div>')


def chart_bars(runs: dict[str, dict[str, float]]) -> tuple[list[str], list[tuple[str, float, float]]]:
    """Lessons in order, and one (run label, y position, seconds) per bar: run k of n sits k/n below its lesson."""
    lessons = sorted({name for times in runs.values() for name in times})
    height = 0.8 / max(1, len(runs))
    bars = [(label, i + k * height, times[name]) for k, (label, times) in enumerate(runs.items())
            for i, name in enumerate(lessons) if name in times]
    return lessons, bars


def seconds_chart(runs: dict[str, dict[str, float]]) -> str:
    """Inline SVG: horizontal bars of seconds per lesson, one colour per run (e.g. smoke, light rehearsal)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    lessons, bars = chart_bars(runs)
    if not lessons:
        return "<p>No timings yet.</p>"
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(lessons) * max(1, len(runs)) ** 0.5 + 1.2))
    height = 0.8 / len(runs)
    for label in runs:
        mine = [(y, s) for run, y, s in bars if run == label]
        ax.barh([y for y, _ in mine], [s for _, s in mine], height=height, label=label)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(lessons))], lessons, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("seconds (log scale)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    buf = io.StringIO()
    with plt.rc_context({"svg.fonttype": "path", "svg.hashsalt": "course"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    plt.close(fig)
    svg = buf.getvalue()
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg[svg.index("<svg"):], flags=re.S)  # RDF boilerplate
    return svg
