"""The one data cache: where things live, checksums, manifests, and atomic builds.

Everything goes under :func:`course_utils.paths.data_dir` ($COURSE_DATA). Generated sets live in
``data_dir()/shapes/<name>-s<seed>-<sizes>/`` with a ``manifest.json`` listing every file's md5: the
folder is built in a temporary sibling and renamed into place, so it is either complete or absent.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable, Iterable

from ..paths import data_dir

__all__ = ["DataError", "file_hash", "verify_file", "shapes_dir", "build_once", "read_manifest", "split_items"]

MANIFEST = "manifest.json"
JPEG = {"quality": 95, "subsampling": 0}  # shapes JPEGs: lossy like the real sets, but no chroma smearing


class DataError(RuntimeError):
    """A dataset is missing, corrupt, or asked for in a way that cannot work; the message says what to do."""


def file_hash(path: str | Path, algo: str = "md5", chunk: int = 1 << 20) -> str:
    """Hex digest of a file (md5, sha1, sha256, ...), read in 1 MiB chunks."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_file(path: str | Path, expected: str, algo: str = "md5", url: str | None = None) -> None:
    """Raise :class:`DataError` naming the file, both checksums and how to fix it, unless they match."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is missing" + (f"; download it from {url} and place it there" if url else ""))
    actual = file_hash(path, algo)
    if actual != expected:
        where = f" Download it again from {url} (or place a good copy there by hand)." if url else \
            f" Delete {path.parent} and run again to rebuild it."
        raise DataError(f"{path} is corrupt: {algo} expected {expected}, got {actual}.{where}")


def shapes_dir(kind: str, seed: int, sizes: tuple[int, ...]) -> Path:
    """Folder of one generated set, e.g. data_dir()/shapes/cifar10-v1-s0-5000x1000 (v = generator version)."""
    from .shapes import VERSION

    return data_dir() / "shapes" / f"{kind}-v{VERSION}-s{seed}-{'x'.join(str(s) for s in sizes)}"


def read_manifest(folder: str | Path) -> dict:
    """The manifest of a generated folder; :class:`DataError` if the folder is not one."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise DataError(f"{folder} has no {MANIFEST}: it is not a generated shapes set (wrong root?). "
                        "Pass the folder that load/get functions created, or delete it to rebuild.")
    return json.loads(path.read_text(encoding="utf-8"))


def build_once(folder: Path, builder: Callable[[Path], dict], rebuild: bool = False) -> dict:
    """Build ``folder`` with ``builder(tmp) -> info`` unless its manifest exists; return the manifest.

    The builder writes into a temporary sibling; we hash every file into the manifest, then rename, so
    an interrupted build leaves nothing that looks finished.
    """
    folder = Path(folder)
    if rebuild and folder.exists():
        shutil.rmtree(folder)
    if (folder / MANIFEST).is_file():
        return read_manifest(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    t0 = time.perf_counter()
    info = builder(tmp)
    files = {p.relative_to(tmp).as_posix(): file_hash(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
    manifest = {"folder": folder.name, **info, "files": files}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    try:
        os.replace(tmp, folder)
    except OSError:  # another process finished first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"generated {folder.name} ({len(files)} files) in {time.perf_counter() - t0:.1f} s -> {folder}")
    return read_manifest(folder)


def split_items(part) -> tuple[int, Iterable]:
    """(count, (image, scene) pairs) of one split handed to a writer: an (images, scenes) tuple, or a sized
    iterable of pairs (the large real-size worlds stream through the writers a chunk at a time)."""
    if isinstance(part, tuple):
        images, scenes = part
        return len(scenes), zip(images, scenes)
    return len(part), iter(part)
