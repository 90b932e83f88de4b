"""Shared fixtures and the per-notebook timing summary."""
from __future__ import annotations

import pytest
import torch

from nbrun import ROOT, _times
from course_utils.record import load_ranges


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tests with one torch thread (tiny models), restoring the setting afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def written_twice(tmp_path, monkeypatch):
    """Generate a shapes set into two fresh caches; return both folders and the relative file list."""
    from course_utils.data import datasets

    def build(kind: str, sizes: tuple):
        roots = []
        for name in ("a", "b"):
            monkeypatch.setenv("COURSE_DATA", str(tmp_path / name))
            roots.append(datasets.shapes_set(kind, sizes=sizes))
        a, b = roots
        return a, b, sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())

    return build


@pytest.fixture(scope="session")
def ranges():
    return load_ranges(ROOT / "tests" / "expected")


def pytest_terminal_summary(terminalreporter):
    if _times:
        terminalreporter.section("smoke notebook seconds (papermill, per run)")
        for name, ts in sorted(_times.items()):
            terminalreporter.write_line(f"{name:<32} " + "  ".join(f"{t:6.1f}" for t in ts))
