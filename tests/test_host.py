"""course_utils.host: usable cores and the (cached, switchable) network probe."""
from __future__ import annotations

import os
import socket

from course_utils import host


def test_usable_cores_is_the_affinity_mask():
    expect = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert host.usable_cores() == expect


def test_offline_env_skips_network(monkeypatch):
    monkeypatch.setattr(host, "_probe_cache", {})
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: (_ for _ in ()).throw(AssertionError("probed")))
    assert host.online() is False


def test_probe_asks_once_and_remembers(monkeypatch):
    monkeypatch.setattr(host, "_probe_cache", {})
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    calls = []

    class _Conn:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def connect(address, timeout):
        calls.append(address)
        if address == host.PROBE_HOSTS[0]:
            raise OSError("unreachable")  # the first host is down, the second answers
        return _Conn()

    monkeypatch.setattr(socket, "create_connection", connect)
    assert host.online() is True and host.online() is True
    assert calls == list(host.PROBE_HOSTS)  # both tried once, then the answer is cached
