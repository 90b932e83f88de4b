"""Write the grades into the file a gradebook imports (``course grade --export canvas|moodle|csv``).

- ``canvas``: Canvas's gradebook CSV (``<out>-canvas.csv``): its fixed leading columns ``Student, ID,
  SIS User ID, SIS Login ID, Section``, a ``Points Possible`` row, one column per lesson. Canvas matches
  students by ``ID`` (the user id in the download's file names) and assignments by the column header:
  name the header after the Canvas assignment with ``--assignment "Lesson 02 (4567)"`` (4567: the
  assignment id in its URL), or Canvas offers to create a new assignment.
- ``moodle``: Moodle's grading worksheet (``<out>-moodle-<lesson>.csv``, one per lesson, as "Download
  grading worksheet" writes it), keyed by ``Identifier`` = ``Participant <id>`` from the download's folders.
- ``csv``: nbgrader's ``nbgrader export`` columns (``<out>-nbgrader.csv``), one row per student and lesson.

The points are the automatic ones (``total`` out of ``max``); points graded by hand are added in the LMS.
A student whose file could not be graded gets an empty grade (an import leaves it unchanged), never a 0.
The ids come from the roster written when the download was read in (``<out>-roster.json``).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from .sheet import protect, read_rows

__all__ = ["roster_path", "read_roster", "write_roster", "best_rows", "export"]

CANVAS_FIXED = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_COLUMNS = ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                  "Grade can be changed", "Last modified (submission)", "Last modified (grade)", "Feedback comments"]
NBGRADER_COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                    "raw_score", "late_submission_penalty", "score", "max_score"]


def roster_path(out: Path) -> Path:
    """Where the roster of the grades CSV ``out`` lives."""
    return out.with_name(out.stem + "-roster.json")


def read_roster(out: Path) -> dict[str, dict]:
    """student -> {lms, id, name, late, submission, file}; empty when none was written."""
    path = roster_path(out)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def write_roster(out: Path, roster: dict[str, dict]) -> None:
    """Add ``roster`` to the one beside ``out`` (students read earlier stay)."""
    merged = {**read_roster(out), **roster}
    roster_path(out).parent.mkdir(parents=True, exist_ok=True)
    roster_path(out).write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def best_rows(rows: list[dict]) -> dict[tuple[str, str], dict | None]:
    """(student, lesson) -> the graded row to export (the highest total when there are several), None if
    the student has rows for that lesson but none was graded."""
    best: dict[tuple[str, str], dict | None] = {}
    for row in rows:
        k = (str(row.get("student", "")), str(row.get("lesson", "")))
        if not k[0] or not k[1]:
            continue
        graded = str(row.get("max", "")) != ""
        old = best.get(k)
        if graded and (old is None or float(row["total"] or 0) > float(old["total"] or 0)):
            best[k] = row
        else:
            best.setdefault(k, None)
    return best


def _num(value) -> str:
    return f"{float(value):g}" if str(value) != "" else ""


def _write(path: Path, header: list[str], lines: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([[protect(str(v)) for v in line] for line in lines])
    return path


def export(out: Path, fmt: str, assignment: str | None = None) -> list[Path]:
    """Write the gradebook file(s) of format ``fmt`` for the grades CSV ``out``; returns their paths."""
    rows, _ = read_rows(out)
    roster = read_roster(out)
    best = best_rows(list(rows.values()))
    lessons = sorted({lesson for _, lesson in best})
    maxima = {les: next((r["max"] for (s, l), r in best.items() if l == les and r), "") for les in lessons}
    students = sorted({s for s, _ in best})
    if fmt in ("canvas", "moodle"):
        unknown = [s for s in students if roster.get(s, {}).get("lms") != fmt or not roster[s].get("id")]
        if unknown and len(unknown) == len(students):
            raise SystemExit(f"--export {fmt}: no {fmt.title()} ids for these grades; grade the {fmt.title()} "
                             "download itself (zip or folder), so the ids are read from its names.")
        for s in unknown:
            print(f"warning: no {fmt.title()} id for {s!r}: left out of the {fmt} export")
        students = [s for s in students if s not in unknown]
    if fmt == "canvas":
        if assignment and len(lessons) != 1:
            raise SystemExit("--assignment names one Canvas column: export one lesson at a time (--lesson NN)")
        header = CANVAS_FIXED + [assignment or les for les in lessons]
        lines = [["Points Possible", "", "", "", ""] + [_num(maxima[les]) for les in lessons]]
        for s in students:
            grades = [_num(best[(s, les)]["total"]) if best.get((s, les)) else "" for les in lessons]
            lines.append([roster[s]["name"], roster[s]["id"], "", "", ""] + grades)
        return [_write(out.with_name(out.stem + "-canvas.csv"), header, lines)]
    if fmt == "moodle":
        paths = []
        for les in lessons:
            lines = []
            for s in (s for s in students if (s, les) in best):
                row = best[(s, les)]
                lines.append([f"Participant {roster[s]['id']}", roster[s]["name"], "", "Submitted for grading",
                              _num(row["total"]) if row else "", _num(maxima[les]), "Yes", "", "", ""])
            paths.append(_write(out.with_name(f"{out.stem}-moodle-{les}.csv"), MOODLE_COLUMNS, lines))
        return paths
    if fmt == "csv":
        lines = []
        for (s, les), row in sorted(best.items()):
            who = roster.get(s, {})
            total = _num(row["total"]) if row else ""
            lines.append([les, "", "", who.get("id") or s, "", who.get("name", ""), "", total,
                          "0" if row else "", total, _num(maxima[les])])
        return [_write(out.with_name(out.stem + "-nbgrader.csv"), NBGRADER_COLUMNS, lines)]
    raise SystemExit(f"--export {fmt!r}: choose canvas, moodle or csv")
