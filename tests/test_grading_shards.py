"""Shards: every student in exactly one slice, the same slice on every machine, the slices even enough;
merging keyed CSVs gives the rows of all parts and refuses parts that overlap."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from course_utils.machinery.grading.sheet import read_rows, write_rows
from course_utils.machinery.grading.shards import in_shard, merge_csvs, parse_shard


def test_each_student_is_in_exactly_one_shard_and_the_split_is_stable():
    students = [f"student{i:03d}_{1000 + i}" for i in range(300)]
    for n in (1, 2, 3, 8):
        slices = [[s for s in students if in_shard(s, (i, n))] for i in range(n)]
        assert sorted(sum(slices, [])) == sorted(students)
        assert min(map(len, slices)) > 300 / n * 0.6  # no shard left nearly empty
    # the rule, computed independently: first 8 bytes of sha256, big-endian, modulo N
    s = "Jane Doe_12345"
    assert in_shard(s, (int.from_bytes(hashlib.sha256(s.encode()).digest()[:8], "big") % 5, 5))
    assert in_shard(s, None)


@pytest.mark.parametrize("spec,err", [("3/3", "between 0 and 2"), ("a/b", "i/N"), ("-1/2", "between"), ("2", "i/N")])
def test_a_bad_shard_says_how_to_write_it(spec, err):
    with pytest.raises(SystemExit, match=err):
        parse_shard(spec)
    assert parse_shard("0/4") == (0, 4)


def _part(path: Path, rows: list[dict], cols: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_rows(path, rows, cols)
    (path.with_name(path.stem + "-feedback")).mkdir(exist_ok=True)
    (path.with_name(path.stem + "-feedback") / f"{rows[0]['student']}.txt").write_text("fb")
    return path


def _row(student, lesson, total, **ex):
    return {"student": student, "lesson": lesson, "file": f"{student}/{lesson}.ipynb", "status": "ok",
            "total": total, "max": 3, **ex, "manual": 1, "seconds": 1.0, "hash": "h", "feedback": f"{student}.txt",
            "detail": ""}


def test_merge_puts_the_parts_together_in_one_runs_column_order(tmp_path):
    a = _part(tmp_path / "a" / "g.csv", [_row("ann", "98_x", 3, e1=2, e2=1)], ["e1", "e2"])
    b = _part(tmp_path / "b" / "g.csv", [_row("bob", "97_y", 1, f1=1), _row("cy", "98_x", 0, e1=0, e2=0)],
              ["f1", "e1", "e2"])
    out = tmp_path / "m" / "grades.csv"
    assert merge_csvs([a, b], out, {"97_y": ["f1"], "98_x": ["e1", "e2"]}) == 3
    rows, cols = read_rows(out)
    assert cols == ["f1", "e1", "e2"]  # lessons in name order, as one run writes them
    assert {k[0]: r["total"] for k, r in rows.items()} == {"ann": "3", "bob": "1", "cy": "0"}
    assert sorted(p.name for p in (tmp_path / "m" / "grades-feedback").iterdir()) == ["ann.txt", "bob.txt"]
    with pytest.raises(SystemExit, match="overlap"):
        merge_csvs([a, a], tmp_path / "m2" / "grades.csv")
    with pytest.raises(SystemExit, match="did that shard's job finish"):
        merge_csvs([a, tmp_path / "missing.csv"], tmp_path / "m3" / "grades.csv")
