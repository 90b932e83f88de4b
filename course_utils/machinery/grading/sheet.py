"""The grades CSV of ``course grade``: one row per (student, lesson, file), merged across runs, spreadsheet-safe.

A run replaces the rows it grades and keeps every other row of the existing file as it was, so grading
``--lesson 02`` into a CSV that holds lesson 01 keeps lesson 01's rows, and a file graded against two
lessons has two rows. The columns are the fixed ones, then the exercise columns of every lesson in the
file (old and new, lesson by lesson), then the tail::

    student, lesson, file, status, total, max, <exercise grade ids ...>, manual, seconds, hash, feedback, detail

Text that a spreadsheet would run as a formula (a cell starting with ``= + - @``, a tab or a carriage
return, e.g. a student folder named ``=HYPERLINK(...)``) is written with a leading ``'`` (OWASP's
advice for CSV injection) and read back without it. The file is written atomically (temp file + rename).
"""
from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path

__all__ = ["FIXED", "TAIL", "Key", "key", "protect", "unprotect", "read_rows", "merge_columns", "write_rows"]

FIXED = ["student", "lesson", "file", "status", "total", "max"]
TAIL = ["manual", "seconds", "hash", "feedback", "detail"]
Key = tuple[str, str, str]
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def key(row: dict) -> Key:
    """A row's identity: (student, lesson, file)."""
    return str(row.get("student", "")), str(row.get("lesson", "")), str(row.get("file", ""))


def protect(value: str) -> str:
    """``value`` as written to the CSV: a leading ``'`` when a spreadsheet would run it (reversible)."""
    return "'" + value if value.lstrip("'").startswith(_FORMULA) else value


def unprotect(value: str) -> str:
    """The inverse of :func:`protect`."""
    return value[1:] if value.startswith("'") and value.lstrip("'").startswith(_FORMULA) else value


def read_rows(path: Path) -> tuple[dict[Key, dict], list[str]]:
    """The rows of a grades CSV keyed by (student, lesson, file), and its exercise columns (empty if none)."""
    if not path.exists():
        return {}, []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = [{k: unprotect(v or "") for k, v in row.items() if k is not None} for row in reader]
        fields = list(reader.fieldnames or [])
    return {key(r): r for r in rows}, [c for c in fields if c not in FIXED and c not in TAIL]


def merge_columns(by_lesson: dict[str, list[str]], old: list[str]) -> list[str]:
    """Exercise columns: each lesson's (lessons in name order), then old columns no lesson claims."""
    cols = [c for name in sorted(by_lesson) for c in by_lesson[name]]
    return list(dict.fromkeys([*cols, *old]))


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return protect(str(value)) if isinstance(value, str) else str(value)


def write_rows(path: Path, rows: list[dict], exercise_cols: list[str]) -> None:
    """Write every row (sorted by lesson, student, file) atomically: a temp file in the same folder, then rename."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIXED + exercise_cols + TAIL, extrasaction="ignore")
    writer.writeheader()
    for row in sorted(rows, key=lambda r: (str(r["lesson"]), str(r["student"]), str(r["file"]))):
        writer.writerow({k: _cell(v) for k, v in row.items()})
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(buf.getvalue())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
