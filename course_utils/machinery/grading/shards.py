"""Spread a class over machines (``course grade --shard i/N``) and merge the keyed CSVs back (``--merge``).

A submission's shard is decided by its student alone (a hash of the name, the same on every machine), so
all of a student's files land in one shard and no list has to be shared between the jobs. Shard CSVs
hold disjoint rows keyed by (student, lesson, file); merging them gives the CSV one run would have
written, and the feedback and executed notebooks beside each are copied beside the merged one.
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from .sheet import merge_columns, read_rows, write_rows

__all__ = ["parse_shard", "in_shard", "merge_csvs"]


def parse_shard(spec: str) -> tuple[int, int]:
    """``"i/N"`` as (i, N) with 0 <= i < N (Slurm's and Kubernetes' job indexes start at 0)."""
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise SystemExit(f"--shard {spec!r}: give it as i/N, e.g. 0/4 for the first of four slices") from None
    if not 0 <= i < n:
        raise SystemExit(f"--shard {spec!r}: i counts from 0, so it must be between 0 and {n - 1}")
    return i, n


def in_shard(student: str, shard: tuple[int, int] | None) -> bool:
    """Whether ``student``'s submissions belong to ``shard`` (everything does when shard is None)."""
    if shard is None:
        return True
    digest = hashlib.sha256(student.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shard[1] == shard[0]


def merge_csvs(parts: list[Path], out: Path, lesson_columns: dict[str, list[str]] | None = None) -> int:
    """Merge grades CSVs into ``out`` (rows of ``out`` itself kept unless a part has the same key); returns rows.

    ``lesson_columns`` (lesson stem -> its exercise columns) puts the columns in the order one run writes.
    A key found in two parts is an error: the shards overlapped, and one of them would silently win.
    """
    rows, cols = read_rows(out)
    seen: dict[tuple, Path] = {}
    for part in parts:
        if not part.exists():
            raise SystemExit(f"{part} does not exist: did that shard's job finish?")
        part_rows, part_cols = read_rows(part)
        for k, row in part_rows.items():
            if k in seen:
                raise SystemExit(f"{part} and {seen[k]} both hold {k}: the shards overlap; grade with the same N")
            seen[k] = part
            rows[k] = row
        cols = merge_columns({}, [*cols, *part_cols])
        for suffix in ("-feedback", "-executed"):
            src = part.with_name(part.stem + suffix)
            if src.is_dir() and src.resolve() != out.with_name(out.stem + suffix).resolve():
                shutil.copytree(src, out.with_name(out.stem + suffix), dirs_exist_ok=True)
    stems = {str(r.get("lesson", "")) for r in rows.values()}
    cols = merge_columns({s: c for s, c in (lesson_columns or {}).items() if s in stems}, cols)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_rows(out, list(rows.values()), cols)
    return len(rows)
