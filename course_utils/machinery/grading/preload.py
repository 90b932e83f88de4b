"""What the warm kernel pool (:mod:`.zygote`) imports: the modules the graded lessons import anyway.

Read from the lessons' code without running it: every ``import``/``from ... import`` outside a function
in a code cell, every ``course_utils.<module>`` a cell names, and, for course modules, their own
module-level imports, followed through the package. Only libraries in :data:`SAFE` are kept (imports
that start no thread and read nothing per kernel), so a lesson that never touches torchvision does not
pay its ~1 s of import in the pool, and nothing a lesson would not import itself is loaded for it.
"""
from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

__all__ = ["BASE", "SAFE", "preload_for"]

BASE = ("IPython", "ipykernel.kernelapp", "ipykernel.ipkernel")  # every kernel imports these before any cell
# Libraries whose import reads no per-kernel setting and starts no thread. Left out on purpose: skimage.data
# and anything that imports huggingface_hub (timm, open_clip) fix their cache folders from $HOME/$XDG_CACHE_HOME
# on import, which a forked kernel would then share with the pool instead of getting its own.
SAFE = {"numpy", "torch", "torchvision", "matplotlib", "PIL", "scipy", "torchmetrics", "tqdm", "course_utils"}
_PACKAGE = Path(__file__).resolve().parents[2]  # course_utils/
_NAMED = re.compile(r"\bcourse_utils(?:\.[A-Za-z_]\w*)+")
# Imports that happen inside a library call, not on import, keyed by a name whose use makes them happen:
# building any optimizer imports torch._dynamo (~1 s), as importing torchvision does; pyplot loads the
# Agg backend with the first figure.
TRIGGERS = {"torch.optim": ("torch._dynamo",), "torchvision": ("torch._dynamo",),
            "matplotlib.pyplot": ("matplotlib.backends.backend_agg",)}


def _module_level_imports(tree: ast.AST, package: str = "") -> set[str]:
    """Dotted names imported outside any function or class body (relative ones resolved against ``package``)."""
    found: set[str] = set()
    todo = list(getattr(tree, "body", []))
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # a submodule, if it is one
        if isinstance(node, ast.Try):  # `except ImportError:` holds a fallback, not what this Python imports
            todo.extend([*node.body, *node.orelse, *node.finalbody])
        else:
            todo.extend(ast.iter_child_nodes(node))
    return found


def _course_file(name: str) -> Path | None:
    rel = Path(*name.split(".")[1:])
    for path in (_PACKAGE / rel / "__init__.py", (_PACKAGE / rel).with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _lazy_table(path: Path) -> dict[str, str]:
    """A package's ``_LAZY = {"name": "submodule"}`` (names it loads from a submodule on first use)."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if (isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_LAZY" for t in node.targets)
                and isinstance(node.value, ast.Dict)):
            try:
                return ast.literal_eval(node.value)
            except ValueError:
                return {}
    return {}


def _course_module(dotted: str) -> str | None:
    """The course module a dotted name needs: ``course_utils.data.load_tensors`` -> ``course_utils.data.datasets``
    (through ``course_utils/data/__init__.py``'s ``_LAZY``); None if it names no course module."""
    parts = dotted.split(".")
    for n in range(len(parts), 1, -1):
        name = ".".join(parts[:n])
        path = _course_file(name)
        if path is not None:
            lazy = _lazy_table(path) if path.name == "__init__.py" and n < len(parts) else {}
            return f"{name}.{lazy[parts[n]]}" if parts[n:n + 1] and parts[n] in lazy else name
    return None


def _resolved(name: str) -> str:
    """``name``, or for a course name the module it needs (:func:`_course_module`)."""
    return (_course_module(name) or name) if name.startswith("course_utils") else name


def _code(cell_source: str) -> str:
    """A cell's Python, with IPython's ``%magic`` and ``!shell`` lines left out."""
    return "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in cell_source.splitlines())


def preload_for(lessons: list[Path]) -> tuple[str, ...]:
    """The modules to preload for kernels running ``lessons`` (notebook paths): :data:`BASE` first."""
    wanted: set[str] = set()
    texts: list[str] = []
    for path in lessons:
        try:
            cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
        except (OSError, ValueError, KeyError):
            continue
        for cell in cells:
            if cell.get("cell_type") != "code":
                continue
            source = "".join(cell.get("source", ""))
            texts.append(source)
            wanted.update(_NAMED.findall(source))
            try:
                wanted |= _module_level_imports(ast.parse(_code(source)))
            except SyntaxError:
                continue
    wanted = {_resolved(m) for m in wanted}
    deps: dict[str, set[str]] = {}
    todo = [m for m in wanted if m.startswith("course_utils")]
    while todo:  # follow the course library's own module-level imports
        name = todo.pop()
        path = _course_file(name)
        if name in deps or path is None:
            continue
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        texts.append(path.read_text(encoding="utf-8"))
        deps[name] = {_resolved(m) for m in _module_level_imports(ast.parse(texts[-1]), package)}
        todo.extend(m for m in deps[name] if m.startswith("course_utils"))

    def ok(name: str, seen: frozenset = frozenset()) -> bool:
        """A course module is preloaded only if everything it imports on import is stdlib or safe."""
        if name in seen or name not in deps:
            return name in seen or not name.startswith("course_utils") or _course_file(name) is None
        return all(ok(m, seen | {name}) if m.startswith("course_utils") else
                   m.split(".")[0] in SAFE or m.split(".")[0] in sys.stdlib_module_names for m in deps[name])

    wanted |= {m for found in deps.values() for m in found}
    text = "\n".join(texts)
    wanted |= {m for key, mods in TRIGGERS.items() if re.search(rf"\b{re.escape(key)}\b", text) for m in mods}
    real = {m for m in wanted if m.split(".")[0] in SAFE
            and (not m.startswith("course_utils") or (_course_file(m) is not None and ok(m)))}
    # `from torch import nn` names a module and `from torch import tensor` a function; telling them apart here
    # would import torch into the grader, so the pool tries each and skips names that are not modules.
    return (*BASE, *sorted(m for m in real if not m.startswith("course_utils")),
            *sorted(m for m in real if m.startswith("course_utils")))
