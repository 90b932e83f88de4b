"""Shared fixtures and the per-notebook timing summary."""
from __future__ import annotations

import pytest
import torch

from nbrun import ROOT, read_times
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


def pytest_sessionstart(session):
    """Forget the notebook timings of earlier sessions (the controller does it, before workers start)."""
    if not hasattr(session.config, "workerinput"):
        import os
        import shutil
        from pathlib import Path

        shutil.rmtree(Path(os.environ["COURSE_BUILD"]) / "notebook-times", ignore_errors=True)


def pytest_collection_modifyitems(session, config, items):
    """Lessons first (the long tests; xdist hands out scopes in this order), the site tests last: they
    build the site from the lessons executed by this session's workers."""
    def rank(item) -> int:
        name = item.nodeid.split("::", 1)[0]
        return 0 if name.endswith("test_notebooks.py") else 2 if name.endswith("test_site.py") else 1
    items.sort(key=rank)  # stable: the order within each group stays


def pytest_terminal_summary(terminalreporter):
    times = read_times()
    if times:
        terminalreporter.section("smoke notebook seconds (papermill run, exercise audit)")
        for name, t in sorted(times.items()):
            terminalreporter.write_line(f"{name:<32} {t.get('papermill', float('nan')):6.1f}  {t.get('audit', float('nan')):6.1f}")
