"""The class-sized steps of ``course grade`` around the grading itself: read the LMS download in, add the
rows of files that could not be graded, merge shards, export to the gradebook, write the class report."""
from __future__ import annotations

from pathlib import Path

from .export import export, write_roster
from .lms import Intake, take_in
from .sheet import merge_columns, read_rows, write_rows
from .shards import in_shard, merge_csvs

__all__ = ["read_in", "add_rejected", "merge", "finish"]


def read_in(src: Path, out: Path, lessons: list[Path], only: Path | None, lms: str = "auto") -> Intake:
    """Read ``src`` (zip or folder) as ``lms`` (auto: from its names); Canvas/Moodle files are staged in
    ``<out>-intake/`` and their ids written to the roster beside ``out``."""
    if not src.exists():
        raise SystemExit(f"{src} does not exist: give the folder or zip that holds the submissions.")
    staging = out.with_name(out.stem + "-intake")
    intake = take_in(src, staging, {p.stem: p for p in lessons}, only.stem if only else None, lms)
    if intake.roster:
        write_roster(out, intake.roster)
    print(f"read {src} as a {intake.lms} download" + (f": {len(intake.roster)} students, "
                                                        f"{len(intake.rejected)} files not graded" if
                                                        intake.lms != "plain" or intake.rejected else ""))
    return intake


def add_rejected(out: Path, intake: Intake, shard: tuple[int, int] | None) -> list[dict]:
    """Add a row for each file of the download that was not graded (in this shard); returns them."""
    mine = [r for r in intake.rejected if in_shard(r["student"], shard)]
    if not mine:
        return []
    rows, cols = read_rows(out)
    for row in mine:
        rows[(row["student"], row["lesson"], row["file"])] = row
        print(f"not graded: {row['student'] or '?'} {row['file']}: {row['detail']}")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_rows(out, list(rows.values()), merge_columns({}, cols))
    return mine


def merge(parts: list[Path], out: Path, lessons: list[Path]) -> int:
    """``course grade --merge``: the shards' CSVs (and rosters, feedback) into ``out``."""
    from .collect import load_lesson
    from .export import read_roster

    stems = {str(r.get("lesson", "")) for p in parts if p.exists() for r in read_rows(p)[0].values()}
    columns = {}
    for path in lessons:
        if path.stem in stems:
            les = load_lesson(path)
            columns[path.stem] = [*les.auto, *les.manual]
    n = merge_csvs(parts, out, columns)
    for part in parts:
        roster = read_roster(part)
        if roster:
            write_roster(out, roster)
    print(f"merged {len(parts)} CSVs into {out}: {n} rows")
    return n


def finish(out: Path, exports: list[str], report: Path | None, assignment: str | None = None) -> None:
    """Write the gradebook exports and the class report for ``out``."""
    for fmt in exports:
        for path in export(out, fmt, assignment):
            print(f"wrote {path} ({fmt})")
    if report is not None and out.exists():
        from .classreport import write_report

        html_path, md_path = write_report(out, report)
        print(f"wrote the class report {html_path} and {md_path}")
