"""course_utils.host: usable cores and the (cached, switchable) network probe."""
from __future__ import annotations

import os
import socket

import pytest

from course_utils import host


def test_usable_cores_is_the_affinity_mask_capped_by_the_quota():
    expect = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    limit = host.cgroup_cpu_limit()
    assert host.usable_cores() == (min(expect, -int(-limit // 1)) if limit else expect)


def _cgroup(tmp_path, files: dict[str, str]) -> str:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text + "\n")
    return str(tmp_path)


def test_cgroup_quota_v2_and_v1(tmp_path):
    assert host.cgroup_cpu_limit(_cgroup(tmp_path / "a", {"cpu.max": "200000 100000"})) == 2.0
    assert host.cgroup_cpu_limit(_cgroup(tmp_path / "b", {"cpu.max": "150000 100000"})) == 1.5
    assert host.cgroup_cpu_limit(_cgroup(tmp_path / "c", {"cpu.max": "max 100000"})) is None
    v1 = {"cpu/cpu.cfs_quota_us": "50000", "cpu/cpu.cfs_period_us": "100000"}
    assert host.cgroup_cpu_limit(_cgroup(tmp_path / "d", v1)) == 0.5
    v1["cpu/cpu.cfs_quota_us"] = "-1"
    assert host.cgroup_cpu_limit(_cgroup(tmp_path / "e", v1)) is None
    assert host.cgroup_cpu_limit(str(tmp_path / "none")) is None


def test_a_container_quota_caps_the_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)  # a 16-core host
    monkeypatch.setattr(host, "cgroup_cpu_limit", lambda root="": 1.5)  # Binder-like: 1.5 CPUs
    assert host.usable_cores() == 2
    monkeypatch.setattr(host, "cgroup_cpu_limit", lambda root="": 0.5)
    assert host.usable_cores() == 1
    monkeypatch.setattr(host, "cgroup_cpu_limit", lambda root="": None)
    assert host.usable_cores() == 16


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


def test_keep_freed_memory_once_and_only_when_unset(monkeypatch):
    import subprocess
    import sys

    code = ("from course_utils import host; print(host.keep_freed_memory(), host.keep_freed_memory())")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    run = lambda e: subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True,  # noqa: E731
                                   check=True).stdout.split()
    glibc = sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    roomy = (host.memory_limit() or 0) >= host.SMALL_MEMORY
    assert run(env) == [str(glibc and roomy)] * 2
    assert run({**env, "MALLOC_MMAP_THRESHOLD_": "131072"}) == ["False", "False"]  # the user's setting is kept


def test_large_tensors_stop_page_faulting():
    """The point of keep_freed_memory: a loop that frees and re-makes 64 MB tensors stops faulting on them."""
    import subprocess
    import sys

    if not (sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")):
        pytest.skip("keep_freed_memory tunes glibc's malloc only")
    code = ("import resource, torch, sys\n"
            "from course_utils import host\n"
            "if sys.argv[1] == 'keep': host.keep_freed_memory()\n"
            "x = torch.ones(16 << 20)\n"  # 64 MB, above glibc's 32 MB mmap ceiling
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
            "for _ in range(20): x = torch.ones(16 << 20) + 1\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    faults = {m: int(subprocess.run([sys.executable, "-c", code, m], env=env, capture_output=True, text=True,
                                    check=True).stdout) for m in ("default", "keep")}
    assert faults["default"] > 20 * (64 << 20) // 4096 // 2  # each new tensor faults its pages in again
    assert faults["keep"] < faults["default"] / 4  # measured: 655k -> 82k


def test_env_var_sets_inside_and_puts_back_what_was_there(monkeypatch):
    monkeypatch.setenv("COURSE_TEST_A", "before")
    monkeypatch.delenv("COURSE_TEST_B", raising=False)
    with host.env_var("COURSE_TEST_A", "inside"), host.env_var("COURSE_TEST_B", "new"):
        assert (os.environ["COURSE_TEST_A"], os.environ["COURSE_TEST_B"]) == ("inside", "new")
    assert os.environ["COURSE_TEST_A"] == "before" and "COURSE_TEST_B" not in os.environ
    with pytest.raises(RuntimeError), host.env_var("COURSE_TEST_A", "inside"):
        raise RuntimeError("a failing run still restores")
    assert os.environ["COURSE_TEST_A"] == "before"
    with host.env_var("COURSE_TEST_A", None):  # None: leave it alone
        assert os.environ["COURSE_TEST_A"] == "before"


def _fake_host(tmp_path, cgroup: str, files: dict[str, str], mem_total_kib: int = 24 << 20):
    root, proc = tmp_path / "cg", tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "cgroup").write_text(cgroup)
    (proc / "meminfo").write_text(f"MemTotal:       {mem_total_kib} kB\nMemFree:  1 kB\n")
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return str(root), str(proc)


@pytest.mark.parametrize("cgroup, files, expected_gib", [
    ("0::/\n", {"memory.max": "2147483648\n"}, 2),                        # Binder / docker, cgroup v2
    ("0::/\n", {"memory.max": "max\n"}, 24),                              # v2, no limit: the RAM
    ("0::/user.slice/job\n", {"user.slice/job/memory.max": "1073741824\n", "memory.max": "max\n"}, 1),
    ("5:memory:/binder\n1:cpu:/\n", {"memory/binder/memory.limit_in_bytes": "2147483648\n",
                                       "memory/memory.limit_in_bytes": "9223372036854771712\n"}, 2),  # v1 child group
    ("5:memory:/\n", {"memory/memory.limit_in_bytes": "9223372036854771712\n"}, 24),  # v1 "no limit"
])
def test_memory_limit_reads_the_cgroup_this_process_is_in(tmp_path, cgroup, files, expected_gib):
    root, proc = _fake_host(tmp_path, cgroup, files)
    assert host.memory_limit(root, proc) == expected_gib << 30


def test_keep_freed_memory_leaves_glibc_alone_in_a_small_container(monkeypatch):
    """On Binder's 2 GiB, glibc's defaults (freed memory goes back to the OS) beat faster re-use."""
    monkeypatch.setattr(host, "_malloc", {})
    monkeypatch.setattr(host, "memory_limit", lambda: 2 << 30)
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)
    assert host.keep_freed_memory() is False


def test_memory_limit_can_be_lowered_for_a_rehearsal(tmp_path, monkeypatch):
    """course rehearse --memory-only runs kernels as under Binder's 2 GiB: $COURSE_MEMORY_LIMIT lowers the limit."""
    root, proc = _fake_host(tmp_path, "0::/\n", {"memory.max": "max\n"})
    monkeypatch.setenv("COURSE_MEMORY_LIMIT", "2G")
    assert host.memory_limit(root, proc) == 2 << 30
    monkeypatch.setenv("COURSE_MEMORY_LIMIT", "64g")
    assert host.memory_limit(root, proc) == 24 << 30  # never above what the machine has
    monkeypatch.setenv("COURSE_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="give bytes or a size like 2G"):
        host.memory_limit(root, proc)

