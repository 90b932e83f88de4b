"""Limits for a grading kernel: an address-space cap and, on Linux with Landlock, writes only in its temp dir.

The grader starts each submission's kernel through this module::

    python -m course_utils.machinery.grading.sandbox --memory-mb 6144 --write /tmp/grade-xyz -- python -m ipykernel_launcher -f ...

which sets the limits on itself and then ``exec``s the kernel, so the kernel and every process it starts
inherit them. What this does and does not stop is spelled out in docs/instructors.md: it is a seat belt
for honest mistakes (a runaway loop, a huge tensor, a stray ``open(..., "w")``), not a wall against an
attacker: it does not limit network access, CPU use by other processes, or reads of files the grader's
user can read. Grade untrusted code inside a container or VM.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import resource
import sys
from pathlib import Path

__all__ = ["landlock_abi", "restrict_writes", "apply_limits", "confine", "wrapper_command", "main"]

# Landlock syscalls (same numbers on x86_64 and aarch64) and the filesystem rights that write.
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
_WRITE_FILE = 1 << 1
_DIR_WRITE = sum(1 << b for b in (4, 5, 6, 7, 8, 9, 10, 11, 12))  # remove/make dir, file, sock, fifo, dev, symlink
_REFER, _TRUNCATE = 1 << 13, 1 << 14  # ABI 2 and ABI 3
_SCOPE_SIGNAL = 1 << 1  # ABI 6: no signals to processes outside the sandbox (e.g. killing the grader)


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The Landlock ABI version this kernel offers (0: none, e.g. not Linux, too old, or disabled)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        abi = _libc().syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(int(abi), 0)


def _write_rights(abi: int) -> tuple[int, int]:
    """(rights for directories, rights for single files) that this ABI can restrict."""
    file_rights = _WRITE_FILE | (_TRUNCATE if abi >= 3 else 0)
    dir_rights = file_rights | _DIR_WRITE | (_REFER if abi >= 2 else 0)
    return dir_rights, file_rights


class _PathBeneath(ctypes.Structure):
    _pack_ = 1  # the kernel's struct landlock_path_beneath_attr is packed
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def restrict_writes(allowed: list[Path]) -> bool:
    """Forbid this process (and its children) to write anywhere but beneath ``allowed``; False if unsupported.

    Reading and executing stay allowed everywhere. Irreversible for the calling process.
    """
    abi = landlock_abi()
    if abi < 1:
        return False
    libc = _libc()
    dir_rights, file_rights = _write_rights(abi)
    # struct landlock_ruleset_attr {handled_access_fs, handled_access_net, scoped}; older ABIs take a prefix.
    attr = (ctypes.c_uint64 * 3)(dir_rights, 0, _SCOPE_SIGNAL if abi >= 6 else 0)
    size = 24 if abi >= 6 else 8
    fd = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        return False
    try:
        for path in allowed:
            if not path.exists():
                continue
            pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = _PathBeneath(dir_rights if path.is_dir() else file_rights, pfd)
                if libc.syscall(_SYS_ADD_RULE, fd, _RULE_PATH_BENEATH, ctypes.byref(rule), 0) != 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
            finally:
                os.close(pfd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(_SYS_RESTRICT_SELF, fd, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(fd)
    return True


def apply_limits(memory_mb: int, cpu_s: int | None = None, file_mb: int = 1024) -> list[str]:
    """Cap address space (none if ``memory_mb`` <= 0), CPU seconds (per process) and the size of any file
    written; no core dumps.

    Returns the limits this system refused (macOS, for one, does not enforce RLIMIT_AS).
    """
    wanted = [("RLIMIT_FSIZE", file_mb * 2**20), ("RLIMIT_CORE", 0)]
    if memory_mb > 0:  # a CUDA kernel reserves far more address space than any useful cap
        wanted.insert(0, ("RLIMIT_AS", memory_mb * 2**20))
    if cpu_s:
        wanted.append(("RLIMIT_CPU", cpu_s))
    refused = []
    for name, value in wanted:
        try:
            resource.setrlimit(getattr(resource, name), (value, value))
        except (ValueError, OSError):
            refused.append(name)
    return refused


def confine(memory_mb: int, write: list[str], cpu_s: int | None = None, require_landlock: bool = False) -> None:
    """Put this process under the grading limits: writes only beneath ``write`` (plus /dev/null and
    /dev/shm), then the resource caps of :func:`apply_limits`. What the wrapper command does before it
    ``exec``s the kernel, and what a kernel forked by the warm pool does before it starts."""
    # /dev/null and shared memory (torch DataLoader workers) must stay writable for ordinary code.
    allowed = [Path(w) for w in write] + [Path("/dev/null"), Path("/dev/shm")]
    if not restrict_writes(allowed) and require_landlock:
        raise RuntimeError("Landlock is not available on this kernel, so writes cannot be confined; "
                           "grade inside a container or VM, or drop --require-landlock.")
    refused = apply_limits(memory_mb, cpu_s)
    if refused:
        print(f"course grade: this system refused {', '.join(refused)}", file=sys.stderr)


def wrapper_command(memory_mb: int, writable: list[Path], cpu_s: int | None = None,
                    require_landlock: bool = False) -> list[str]:
    """The argv prefix that runs a command under these limits (put the command after it)."""
    cmd = [sys.executable, "-m", "course_utils.machinery.grading.sandbox", "--memory-mb", str(memory_mb)]
    if cpu_s:
        cmd += ["--cpu-s", str(cpu_s)]
    for path in writable:
        cmd += ["--write", str(path)]
    if require_landlock:
        cmd.append("--require-landlock")
    return [*cmd, "--"]


def main(argv: list[str] | None = None) -> None:
    """Apply the limits, then exec the command given after ``--``."""
    p = argparse.ArgumentParser(prog="python -m course_utils.machinery.grading.sandbox")
    p.add_argument("--memory-mb", type=int, required=True, help="address-space cap in MiB (0: none)")
    p.add_argument("--cpu-s", type=int, default=None, help="CPU-seconds cap per process (default: none)")
    p.add_argument("--write", action="append", default=[], help="a folder (or file) writes are allowed in")
    p.add_argument("--require-landlock", action="store_true", help="refuse to run without Landlock")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("give the command to run after --")
    try:
        confine(args.memory_mb, args.write, args.cpu_s, args.require_landlock)
    except RuntimeError as exc:
        sys.exit(str(exc))
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
