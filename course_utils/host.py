"""What this machine offers: CPU cores this process may use, and whether dataset servers are reachable.

A bottom layer of ``course_utils`` beside ``paths``: it imports nothing from the package, so ``config``
(profile and thread choice), ``data`` (DataLoader workers, downloads) and ``doctor`` share one answer.
"""
from __future__ import annotations

import os
import socket

__all__ = ["usable_cores", "online", "PROBE_HOSTS"]

# Hosts whose reachability means "real downloads can work from here" (short timeout, checked once).
PROBE_HOSTS = (("www.cs.toronto.edu", 443), ("download.pytorch.org", 443))
_probe_cache: dict[str, bool] = {}


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


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
