"""What this machine offers: CPU cores this process may use (affinity and container quota), whether
dataset servers are reachable, and one allocator setting that makes CPU training on it fast.

A bottom layer of ``course_utils`` beside ``paths``: it imports nothing from the package, so ``config``
(profile and thread choice), ``data`` (DataLoader workers, downloads) and ``doctor`` share one answer.
"""
from __future__ import annotations

import math
import os
import socket
from contextlib import contextmanager

__all__ = ["usable_cores", "cgroup_cpu_limit", "memory_limit", "keep_freed_memory", "env_var", "online",
           "PROBE_HOSTS"]

# Hosts whose reachability means "real downloads can work from here" (short timeout, checked once).
PROBE_HOSTS = (("www.cs.toronto.edu", 443), ("download.pytorch.org", 443))
_probe_cache: dict[str, bool] = {}


def _read(path: str) -> str | None:
    """A small system file's text (cgroup, /proc), stripped; None where it cannot be read."""
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return None


def cgroup_cpu_limit(root: str = "/sys/fs/cgroup") -> float | None:
    """CPUs a container's cgroup quota allows (Binder, Kubernetes, ``docker --cpus``), or None without one.

    cgroup v2: ``cpu.max`` = "<quota> <period>" or "max <period>"; v1: ``cpu/cpu.cfs_quota_us`` (-1: none)
    over ``cpu/cpu.cfs_period_us``.
    """
    read = lambda *parts: _read(os.path.join(root, *parts))  # noqa: E731
    v2 = read("cpu.max")
    if v2:
        quota, _, period = v2.partition(" ")
        return int(quota) / int(period or 100000) if quota != "max" else None
    quota, period = read("cpu", "cpu.cfs_quota_us"), read("cpu", "cpu.cfs_period_us")
    if quota and period and int(quota) > 0:
        return int(quota) / int(period)
    return None


def usable_cores() -> int:
    """CPU cores this process may use: its affinity mask (where the OS has one), capped by a cgroup CPU quota.

    A container often sees every core of its host but may use only a few (Binder: 1-2 of 8-64); one torch
    thread per host core would then fight over the quota, which is far slower than one thread per allowed core.
    """
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    return max(1, min(cores, math.ceil(limit))) if limit else cores


def memory_limit(root: str = "/sys/fs/cgroup", proc: str = "/proc") -> int | None:
    """Bytes of memory this process may use: its cgroup's limit (Binder's 2 GiB, ``docker --memory``) or the
    machine's RAM, whichever is smaller; None where neither can be read.

    The cgroup is the one ``/proc/self/cgroup`` names (v2: ``0::/path``, v1: ``N:memory:/path``), read at
    that path below ``root`` and, inside a container (whose own cgroup shows as "/"), at ``root`` itself.
    ``$COURSE_MEMORY_LIMIT`` (bytes, or with a K/M/G suffix) lowers it: ``course rehearse --memory-only``
    sets Binder's 2G so that its kernels behave as Binder's do.
    """
    where = {"v2": "/", "v1": "/"}
    for line in (_read(os.path.join(proc, "self", "cgroup")) or "").splitlines():
        _, controllers, path = line.split(":", 2) if line.count(":") >= 2 else ("", "", "/")
        if controllers == "":
            where["v2"] = path
        elif "memory" in controllers.split(","):
            where["v1"] = path
    limits = []
    for rel in {where["v2"], "/"}:
        limits.append(_read(os.path.join(root, rel.lstrip("/"), "memory.max")))
    for rel in {where["v1"], "/"}:
        limits.append(_read(os.path.join(root, "memory", rel.lstrip("/"), "memory.limit_in_bytes")))
    found = [int(v) for v in limits if v and v.isdigit() and int(v) < 1 << 60]  # v1 writes ~2**63 for "none"
    for line in (_read(os.path.join(proc, "meminfo")) or "").splitlines():
        if line.startswith("MemTotal:"):
            found.append(int(line.split()[1]) * 1024)
    asked = os.environ.get("COURSE_MEMORY_LIMIT", "").strip().upper()
    if asked:
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(asked[-1], 1)
        try:
            found.append(int(float(asked.rstrip("KMG")) * scale))
        except ValueError:
            raise ValueError(f"COURSE_MEMORY_LIMIT={asked!r}: give bytes or a size like 2G") from None
    return min(found) if found else None


SMALL_MEMORY = 4 << 30  # below this (Binder's 2 GiB), memory matters more than page faults


_malloc: dict[str, bool] = {}


def keep_freed_memory(limit_mb: int = 256) -> bool:
    """glibc: serve allocations up to ``limit_mb`` from the heap, and keep up to that much freed memory.

    By default glibc maps every allocation above 32 MB (a CNN's activations at batch 256) afresh and unmaps
    it when freed, so each training step page-faults on every page of them again: measured on a busy 2-core
    machine, 2.3 million page faults in 15 s and 558 instead of 799 images/s for bench_fit's small CNN.
    Once per process; returns True if applied. Skipped off Linux, without glibc's ``mallopt``, when
    ``$MALLOC_MMAP_THRESHOLD_``/``$MALLOC_TRIM_THRESHOLD_`` say what the user wants, and where this process
    may use under 4 GiB (:func:`memory_limit`): on Binder's 2 GiB the kept memory (and the fragments it
    leaves in the heap) cost more than the page faults, measured on lesson 11's light run.
    """
    if "done" not in _malloc:
        _malloc["done"] = False
        limit = memory_limit()
        small = limit is not None and limit < SMALL_MEMORY
        users = {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & set(os.environ)
        if os.name == "posix" and not small and not users:
            try:
                import ctypes
                libc = ctypes.CDLL("libc.so.6")
                m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
                _malloc["done"] = bool(libc.mallopt(m_mmap_threshold, limit_mb << 20)
                                       and libc.mallopt(m_trim_threshold, limit_mb << 20))
            except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
                pass
    return _malloc["done"]


@contextmanager
def env_var(name: str, value: str | None):
    """Set environment variable ``name`` to ``value`` inside (for the kernels and tools started there), then
    put back what was there before; ``value=None`` leaves it as it is."""
    if value is None:
        yield
        return
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def online(timeout: float = 1.5) -> bool:
    """True if a dataset server answers (asked once per process); always False with $COURSE_OFFLINE set."""
    if "online" not in _probe_cache:
        if os.environ.get("COURSE_OFFLINE"):
            _probe_cache["online"] = False
        else:
            ok = False
            for host, port in PROBE_HOSTS:
                try:
                    with socket.create_connection((host, port), timeout=timeout):
                        ok = True
                        break
                except OSError:
                    continue
            _probe_cache["online"] = ok
    return _probe_cache["online"]
