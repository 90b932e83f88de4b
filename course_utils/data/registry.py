"""The real datasets: fetch them (resumable, verified) or, in a rehearsal, their shapes-world stand-in.

Checksums are the datasets' own: the md5s torchvision ships for CIFAR, VOC, Pets and Flowers, and the
SHA-1s published on cocodataset.org for COCO. Archives go to ``data_dir()/downloads`` and are
extracted (atomically) next to it, in the layout torchvision's dataset classes expect.
"""
from __future__ import annotations

from pathlib import Path

from ..host import online as _online
from ..paths import data_dir
from .cache import DataError
from .catalog import ALIASES, REAL, RealDataset, ask_for_large, is_large, large_allowed, real_name
from .download import download, extract
from .rehearsal import real_root
from .source import requested_source

__all__ = ["RealDataset", "REAL", "ALIASES", "is_cached", "ensure", "status", "real_name", "root_of"]


def root_of(name: str) -> Path:
    """Folder the dataset is extracted into."""
    return (data_dir() / REAL[real_name(name)].folder).resolve()


def is_cached(name: str) -> bool:
    """True if the real dataset behind ``name`` is fully extracted in data_dir()."""
    spec = REAL[real_name(name)]
    folder = data_dir() / spec.folder
    return all((folder / rel).exists() for rel in spec.expect)


def ensure(name: str, progress: bool = True, source: str | None = None, allow_large: bool | None = None) -> Path:
    """Download (resumable, verified) and extract the real dataset unless cached; return its root.

    The download's size is printed before it starts. One over 1 GB (VOC) starts only when asked for:
    ``allow_large=True`` (``course data download`` passes it) or ``$COURSE_ALLOW_LARGE=1``; otherwise a
    :class:`DataError` says how.

    With ``source="shapes"`` (default: ``$COURSE_DATA_SOURCE``), a rehearsal: the shapes world at the real
    set's size, in its layout (:func:`course_utils.data.rehearsal.real_root`), and never the network.
    """
    key = real_name(name)
    if (source or requested_source()) == "shapes":
        return real_root(key, progress=progress)
    spec, root = REAL[key], root_of(key)
    if is_cached(key):
        return root
    if not _online():
        raise DataError(f"{spec.title} ({key}) is not in {data_dir()} and no dataset server is reachable. "
                        f"Run `course data download {key}` on a machine with internet and copy {data_dir()} "
                        "here, or use profile='smoke' (the shapes world in the same format).")
    if is_large(key) and not (allow_large or (allow_large is None and large_allowed())):
        raise DataError(ask_for_large(key) + ". Or use profile='smoke' (the shapes world, no download).")
    print(f"downloading {spec.title}: {spec.size} into {data_dir()} (once; later runs read the cache)", flush=True)
    root.mkdir(parents=True, exist_ok=True)
    for url, filename, checksum in spec.files:
        path = download(url, data_dir() / "downloads" / filename, checksum, progress=progress)
        if filename.endswith((".tar", ".tar.gz", ".tgz", ".zip")):
            extract(path, root)
        else:
            (root / filename).write_bytes(path.read_bytes())
    if not is_cached(key):
        missing = [r for r in spec.expect if not (data_dir() / spec.folder / r).exists()]
        raise DataError(f"{spec.title}: archives extracted but {missing} are missing in {root}; "
                        f"delete {root} and run `course data download {key}` again.")
    return root


def status() -> list[tuple[str, str, str, str]]:
    """(name, title, size, 'cached' or 'missing') for every real dataset."""
    return [(k, s.title, s.size, "cached" if is_cached(k) else "missing") for k, s in REAL.items()]
