"""The package's layers: ``paths`` and ``host`` import nothing from course_utils; ``data`` imports only
data, paths and host (never config), so the old config <-> data import cycle cannot come back.

Two checks: every lower module imported in a fresh interpreter with each import it makes recorded (what
really happens at import time), and every import statement in their source, also those inside functions
(which run only later).
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


@pytest.mark.parametrize("path", LOWER, ids=lambda p: str(p.relative_to(PKG)))
def test_no_import_statement_points_upward(path):
    importer = _name(path)
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    bad = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            target = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
                if node.level else node.module
            targets = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        bad += [f"line {node.lineno}: imports {t}" for t in targets if t.startswith("course_utils") and
                _upward(importer, t)]
    assert not bad, f"{importer}: {bad}"
