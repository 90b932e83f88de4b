"""The class report of ``course grade`` (``report.html`` and ``report.md``): which exercise was hard.

Per lesson and exercise: mean and spread (standard deviation) of the points, the share of full marks, and
the most frequent first failing check message (read from the feedback files, so it is the message the
learner saw). A figure per lesson: the histogram of totals and the share of full marks per exercise.
Per student, one line: score, status, late mark, the exercises that lost points. Files that could not
be graded are listed with the reason.
"""
from __future__ import annotations

import base64
import html
import io
import re
import statistics
from collections import Counter
from pathlib import Path

from .export import read_roster
from .sheet import read_rows

__all__ = ["ExerciseStats", "parse_feedback", "class_stats", "write_report"]

_LINE = re.compile(r"^([✓✗]) (\S+)  ([0-9.]+)/([0-9.]+)(?:: (.*))?$")


def parse_feedback(text: str) -> list[tuple[str, float, float, str]]:
    """(grade id, points, max, first failing message) per autograded line of a feedback file."""
    out = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            why = (m[5] or "").split(" / ")[0].strip()
            out.append((m[2], float(m[3]), float(m[4]), why if m[1] == "✗" else ""))
    return out


class ExerciseStats:
    """Points of one exercise across the class."""

    def __init__(self, gid: str, max_points: float):
        self.gid, self.max, self.points, self.why = gid, max_points, [], Counter()

    def add(self, points: float, why: str) -> None:
        self.points.append(points)
        if why:
            self.why[why] += 1

    @property
    def mean(self) -> float:
        return statistics.fmean(self.points) if self.points else 0.0

    @property
    def spread(self) -> float:
        return statistics.pstdev(self.points) if len(self.points) > 1 else 0.0

    @property
    def full(self) -> float:
        return sum(p >= self.max for p in self.points) / len(self.points) if self.points else 0.0

    def top_why(self) -> tuple[str, int]:
        return self.why.most_common(1)[0] if self.why else ("", 0)


def class_stats(out: Path, feedback_dir: Path | None = None):
    """Per lesson: ({grade id: ExerciseStats}, totals, max, student lines, ungraded rows)."""
    rows, _ = read_rows(out)
    feedback_dir = feedback_dir or out.with_name(out.stem + "-feedback")
    roster = read_roster(out)
    lessons: dict[str, dict] = {}
    for row in sorted(rows.values(), key=lambda r: (r["lesson"], r["student"], r["file"])):
        les = lessons.setdefault(row["lesson"] or "(unknown lesson)",
                                 {"ex": {}, "totals": [], "max": 0.0, "students": [], "ungraded": []})
        fb = feedback_dir / row.get("feedback", "") if row.get("feedback") else None
        if row.get("max", "") == "" or fb is None or not fb.is_file():
            les["ungraded"].append(f"{row['student'] or '?'} · {row['file']}: {row.get('detail', '')}")
            continue
        lost = []
        for gid, pts, mx, why in parse_feedback(fb.read_text(encoding="utf-8")):
            les["ex"].setdefault(gid, ExerciseStats(gid, mx)).add(pts, why)
            if pts < mx:
                lost.append(f"{gid} {pts:g}/{mx:g}")
        les["totals"].append(float(row["total"] or 0))
        les["max"] = max(les["max"], float(row["max"] or 0))
        late = " · late" if roster.get(row["student"], {}).get("late") else ""
        les["students"].append(f"{row['student']} · {float(row['total'] or 0):g}/{float(row['max']):g} · "
                               f"{row['status']}{late}" + (f" · lost: {', '.join(lost)}" if lost else " · full marks"))
    return lessons


def _figure(name: str, info: dict) -> bytes:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [1, 1.4]})
    from matplotlib.ticker import MaxNLocator

    top = info["max"] or 1
    step = 0.5 if top <= 20 else top / 40  # half points: the common partial credit
    edges = [-step / 2 + i * step for i in range(int(top / step) + 2)]  # one bar centred on each score
    a.hist(info["totals"], bins=edges, color="#4c72b0", edgecolor="white")
    a.set(title=f"{name}: totals", xlabel=f"points (of {top:g})", ylabel="submissions", xlim=(edges[0], edges[-1]))
    a.yaxis.set_major_locator(MaxNLocator(integer=True))
    ex = list(info["ex"].values())
    b.barh([e.gid for e in ex][::-1], [100 * e.full for e in ex][::-1], color="#dd8452")
    b.set(title="full marks per exercise", xlabel="% of submissions", xlim=(0, 100))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def write_report(out: Path, report: Path, feedback_dir: Path | None = None) -> tuple[Path, Path]:
    """Write ``report`` .html, .md and one .png per lesson; returns the (html, md) paths."""
    report.parent.mkdir(parents=True, exist_ok=True)
    md, body = [f"# Class report: {out.name}", ""], [f"<h1>Class report: {html.escape(out.name)}</h1>"]
    for name, info in class_stats(out, feedback_dir).items():
        n = len(info["totals"])
        mean = statistics.fmean(info["totals"]) if n else 0.0
        head = f"{n} graded, {len(info['ungraded'])} not graded; mean {mean:.2f} of {info['max']:g}"
        md += [f"## {name}", "", head, ""]
        body += [f"<h2>{html.escape(name)}</h2>", f"<p>{html.escape(head)}</p>"]
        if info["ex"]:
            png = report.with_name(f"{report.name}-{name}.png")
            png.write_bytes(_figure(name, info))
            md += [f"![{name}]({png.name})", ""]
            body.append(f'<img alt="{html.escape(name)}" src="data:image/png;base64,'
                        f'{base64.b64encode(png.read_bytes()).decode()}">')
            cols = ["exercise", "points", "mean", "spread", "full marks", "most frequent first failing check"]
            md += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            body.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>")
            for e in sorted(info["ex"].values(), key=lambda e: e.full):
                why, count = e.top_why()
                cells = [e.gid, f"{e.max:g}", f"{e.mean:.2f}", f"{e.spread:.2f}", f"{100 * e.full:.0f}%",
                         f"{why} ({count}×)" if count else ""]
                md.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
                body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
            body.append("</table>")
        for title, lines in (("Students", info["students"]), ("Not graded", info["ungraded"])):
            if lines:
                md += ["", f"### {title}", "", *[f"- {ln}" for ln in lines], ""]
                body += [f"<h3>{title}</h3><ul>", *[f"<li>{html.escape(ln)}</li>" for ln in lines], "</ul>"]
    style = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}table{border-collapse:"
             "collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}img{max-width:100%}")
    html_path, md_path = report.with_suffix(".html"), report.with_suffix(".md")
    html_path.write_text(f"<!doctype html><meta charset='utf-8'><title>Class report</title><style>{style}</style>"
                         + "\n".join(body) + "\n", encoding="utf-8")
    md_path.write_text("\n".join(md) + "\n", encoding="utf-8")
    return html_path, md_path
