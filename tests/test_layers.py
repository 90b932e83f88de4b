"""The package's layers and wings.

- ``paths`` and ``host`` import nothing from course_utils; ``data`` imports only data, paths and host (never
  config); the lesson library (everything outside ``machinery/``) never imports the course machinery.
- No import circle anywhere in course_utils: the graph of every import statement (also those inside
  functions, which run only later) between course_utils modules has no cycle.
- No module is over 300 lines (STYLE.md: files you read top to bottom).

Two ways of looking: every lower module imported in a fresh interpreter with each import it makes recorded
(what really happens at import time), and every import statement in the source.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "course_utils"
# layer -> the course_utils modules (and their submodules) it may import; anything else points upward
ALLOWED = {
    "course_utils.paths": (),
    "course_utils.host": (),
    "course_utils.data": ("course_utils.data", "course_utils.paths", "course_utils.host"),
}
MACHINERY = "course_utils.machinery"
MAX_LINES = 300


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str | None:
    return next((k for k in ALLOWED if module == k or module.startswith(k + ".")), None)


def _upward(importer: str, target: str) -> bool:
    layer = _layer(importer)
    return layer is not None and not any(target == a or target.startswith(a + ".") for a in ALLOWED[layer])


LOWER = [p for p in sorted(PKG.rglob("*.py")) if _layer(_name(p))]

_RECORDER = r"""
import builtins, importlib, importlib.util, json, sys
edges, real = [], builtins.__import__

def spy(name, globals=None, locals=None, fromlist=(), level=0):
    module = real(name, globals, locals, fromlist, level)
    importer = (globals or {}).get("__name__", "")
    if importer.startswith("course_utils"):
        package = globals.get("__package__") or importer.rpartition(".")[0]
        target = importlib.util.resolve_name("." * level + name, package) if level else name
        if target.startswith("course_utils"):
            edges.append((importer, target))
            # `from .. import config` names the module in the fromlist
            edges.extend((importer, f"{target}.{item}") for item in fromlist or () if f"{target}.{item}" in sys.modules)
    return module

builtins.__import__ = spy
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(edges))
"""


def test_importing_the_lower_layers_makes_no_upward_import():
    names = [_name(p) for p in LOWER]
    out = subprocess.run([sys.executable, "-c", _RECORDER, *names], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout
    edges = {tuple(e) for e in json.loads(out)}
    assert ("course_utils.data.cache", "course_utils.paths") in edges  # the recorder sees imports at all
    bad = sorted(f"{a} imports {b}" for a, b in edges if _upward(a, b))
    assert not bad, bad


def _imports(path: Path, importer: str | None = None) -> list[tuple[int, str]]:
    """(line, imported name) for every import statement in ``path`` (module ``importer``), relative ones
    resolved; ``from x import y`` gives ``x.y`` (y may be a module) and ``x``."""
    importer = importer or _name(path)
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            target = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
                if node.level else node.module
            found += [(node.lineno, f"{target}.{a.name}") for a in node.names]
            found += [(node.lineno, target)] if node.module else []
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return found


MODULES = {_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _module_of(name: str, modules) -> str | None:
    """The module a dotted import name lands in (``course_utils.data.cache.DataError`` -> its module)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(modules: dict[str, Path] = MODULES) -> dict[str, set[str]]:
    """module -> the course_utils modules its import statements name (a package's ``__init__`` only when named)."""
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for _, t in _imports(path, name) if t.startswith("course_utils")
                       and (m := _module_of(t, modules)) and m != name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (or a module importing itself)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


@pytest.mark.parametrize("path", LOWER, ids=lambda p: str(p.relative_to(PKG)))
def test_no_import_statement_points_upward(path):
    importer = _name(path)
    bad = [f"line {n}: imports {t}" for n, t in _imports(path) if t.startswith("course_utils") and _upward(importer, t)]
    assert not bad, f"{importer}: {bad}"


def test_no_import_circle_anywhere():
    graph = import_graph()
    assert graph["course_utils.data.registry"] >= {"course_utils.data.catalog", "course_utils.data.rehearsal"}
    cycles = find_cycles(graph)
    detail = ["; ".join(f"{m} -> {sorted(graph[m] & set(c))}" for m in c) for c in cycles]
    assert not cycles, f"import circles (give each module one direction): {detail}"


def test_find_cycles_sees_a_circle_through_a_function_level_import(tmp_path):
    pkg = tmp_path / "course_utils" / "demo"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .a import g\n")
    (pkg / "c.py").write_text("from .b import f\n")
    mods = {".".join(p.relative_to(tmp_path).with_suffix("").parts): p for p in pkg.glob("[abc].py")}
    graph = import_graph(mods)
    assert graph["course_utils.demo.c"] == {"course_utils.demo.b"}
    assert find_cycles(graph) == [["course_utils.demo.a", "course_utils.demo.b"]]


# `python -m course_utils` is the `course` command: its entry point is the one door into the machinery.
ENTRY = "course_utils.__main__"


@pytest.mark.parametrize("path", [p for p in MODULES.values() if not _name(p).startswith(MACHINERY) and _name(p) != ENTRY],
                         ids=lambda p: str(p.relative_to(PKG)))
def test_the_lesson_library_never_imports_the_machinery(path):
    bad = [f"line {n}: imports {t}" for n, t in _imports(path) if t.startswith(MACHINERY)]
    assert not bad, f"{_name(path)} is lesson library; move what it needs out of machinery/: {bad}"


def test_no_module_is_over_300_lines():
    long = {str(p.relative_to(PKG)): n for p in MODULES.values()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these by topic (STYLE.md: about {MAX_LINES} lines at most): {long}"


def test_no_lesson_imports_the_machinery():
    import nbformat

    bad = []
    for nb_path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for i, cell in enumerate(nbformat.read(nb_path, as_version=4).cells):
            if cell.cell_type == "code" and MACHINERY in cell.source:
                bad.append(f"{nb_path.name} cell {i}")
    assert not bad, bad
