"""`course data status|download|shapes` from the command line parser."""
from __future__ import annotations

import re

from course_utils.machinery.cli import build_parser
from course_utils.data.registry import REAL


def _run(argv, capsys):
    args = build_parser().parse_args(argv)
    rc = args.func(args)
    return rc, capsys.readouterr().out


def _states(out: str) -> dict[str, str]:
    """{dataset: 'cached' | 'missing'} from the status table's rows ("  name  state  size  title")."""
    return dict(re.findall(r"^  (\S+) +(cached|missing) ", out, re.M))


def test_status_lists_every_real_dataset(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    rc, out = _run(["data", "status"], capsys)
    assert rc == 0 and str(tmp_path) in out
    names = ("cifar10", "cifar100", "voc", "coco", "pets", "flowers102")
    assert _states(out) == {name: "missing" for name in names}
    assert "nothing generated yet" in out
    for rel in REAL["cifar10"].expect:  # CIFAR-10's files in place: its row (and only its row) says cached
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    _, out = _run(["data", "status"], capsys)
    assert _states(out) == {name: "cached" if name == "cifar10" else "missing" for name in names}


def test_shapes_then_status(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    monkeypatch.setitem(__import__("course_utils.data.datasets", fromlist=["x"]).SMOKE_SIZES, "pets", (32, 4, 2))
    rc, _ = _run(["data", "shapes", "pets"], capsys)
    assert rc == 0
    rc, out = _run(["data", "status"], capsys)
    assert "pets-v" in out and "32x4x2" in out


def test_download_offline_fails_with_advice(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    rc, out = _run(["data", "download", "cifar10"], capsys)
    assert rc == 1 and "✗ cifar10" in out and "profile='smoke'" in out
