"""Resumable, checksum-verified downloads and atomic extraction (standard library + tqdm).

``download(url, dest, "md5:...")`` writes to ``dest.part``, resumes it with an HTTP ``Range`` request
if a previous try was cut off, verifies the checksum, and only then renames the file to ``dest``: a
failed or corrupt download is never used. ``extract(archive, into)`` unpacks into a temporary folder
and renames each top-level entry into place.
"""
from __future__ import annotations

import os
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from .cache import DataError, file_hash

__all__ = ["download", "extract", "parse_checksum"]

_CHUNK = 1 << 16


def parse_checksum(checksum: str) -> tuple[str, str]:
    """'sha256:ab12...' -> ('sha256', 'ab12...'); a bare 32-hex string is md5."""
    algo, _, hexdigest = checksum.rpartition(":")
    return (algo or "md5").lower(), hexdigest.lower()


def _fetch(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Append the rest of ``url`` to ``part`` (Range request from its current size)."""
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        if have and resp.status != 206:  # the server ignored Range: start again
            have = 0
        total = resp.headers.get("Content-Length")
        total = int(total) + have if total is not None else None
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=part.name[:-5], leave=False)
        try:
            with open(part, "ab" if have else "wb") as f:
                while block := resp.read(_CHUNK):
                    f.write(block)
                    if bar is not None:
                        bar.update(len(block))
        finally:
            if bar is not None:
                bar.close()
        if total is not None and part.stat().st_size < total:
            raise ConnectionError(f"connection closed at {part.stat().st_size} of {total} bytes")


def download(url: str, dest: str | Path, checksum: str, retries: int = 3, timeout: float = 30.0,
             progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` (resuming, retrying, verifying ``checksum``); return ``dest``."""
    dest = Path(dest)
    algo, expected = parse_checksum(checksum)
    if dest.is_file() and file_hash(dest, algo) == expected:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    error: Exception | None = None
    for attempt in range(retries):
        try:
            _fetch(url, part, timeout, progress)
            error = None
            break
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and part.exists():  # nothing left to fetch: the .part is complete
                error = None
                break
            error = exc
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            error = exc
            time.sleep(min(2 ** attempt, 8) * 0.1)
    if error is not None:
        raise DataError(f"could not download {url} ({error}); {part.stat().st_size if part.exists() else 0} "
                        f"bytes kept in {part} and resumed next time. Or download it yourself and place it "
                        f"at {dest}.") from error
    actual = file_hash(part, algo)
    if actual != expected:
        bad = part.with_name(dest.name + ".corrupt")
        os.replace(part, bad)  # never resume onto a bad file, never use it
        raise DataError(f"{dest.name} from {url} is corrupt: {algo} expected {expected}, got {actual} "
                        f"(kept as {bad}). Run again to retry, or download it by hand and place it at {dest}.")
    os.replace(part, dest)
    return dest


def extract(archive: str | Path, into: str | Path) -> list[Path]:
    """Unpack a .tar/.tar.gz/.tgz/.zip into ``into`` atomically (temp folder, then rename); return entries."""
    archive, into = Path(archive), Path(into)
    tmp = into / f".extract-{archive.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                z.extractall(tmp)
        else:
            with tarfile.open(archive) as t:
                t.extractall(tmp, filter="data")
        out = []
        for entry in sorted(tmp.iterdir()):
            target = into / entry.name
            if target.exists():  # merge into an existing folder (e.g. VOCdevkit from two archives)
                if entry.is_dir() and target.is_dir():
                    shutil.copytree(entry, target, dirs_exist_ok=True)
                    out.append(target)
                    continue
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            os.replace(entry, target)
            out.append(target)
        return out
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{archive} could not be unpacked ({exc}): delete it and download again.") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
