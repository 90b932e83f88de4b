"""A warm kernel pool: grading kernels forked from one process that imported the heavy libraries once.

A cold grading kernel starts Python, imports ipykernel, and then the lesson's first cells import torch,
matplotlib and the course library: about 2 s of CPU per submission (3 s with torchvision) before any
answer runs, paid again for every submission. :class:`Zygote` starts one helper process per ``course grade``
run that imports the lessons' own module-level imports once (:mod:`.preload`; in the kernels' own
environment: same profile, threads, device, backend) and then forks a kernel for each submission on request. A forked kernel starts in milliseconds with those
modules already in ``sys.modules``; everything else is what a cold kernel gets, set in the child before
the kernel starts: its own environment, working folder, stdin/stdout/stderr, session (process group),
the same sandbox (:func:`.sandbox.confine`: write confinement and resource caps), ``sys.argv`` and
``sys.path`` as ``python -m ipykernel_launcher`` leaves them, and fresh seeds for ``random`` and NumPy's
global generator (torch's default generator starts from its fixed default seed in both).

Why the result cannot change: importing these modules reads nothing that differs between kernels
(the course library reads its environment when called, not on import; tests/test_grading_pool.py checks
what a notebook can see against a cold kernel) and draws from no random generator that a lesson seeds.
Linux only (fork + Landlock); anywhere else, or if the helper dies, kernels start cold as before.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["PRELOAD", "Zygote", "ForkedKernel", "supported", "start", "threads_per_kernel", "matches"]

# What the helper imports when nobody says (``course grade`` passes :func:`.preload.preload_for` its lessons).
PRELOAD = ("IPython", "ipykernel.kernelapp", "ipykernel.ipkernel", "numpy", "torch", "matplotlib.pyplot")
_READY_S = 300  # seconds to wait for the helper's imports, on a loaded machine
# What the preloaded imports may read from the environment: a kernel whose values differ starts cold.
_IMPORT_SETTINGS = ("OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "COURSE_DEVICE", "COURSE_PROFILE", "MPLBACKEND",
                    "PYTHONPATH", "VIRTUAL_ENV", "CONDA_PREFIX", "LD_LIBRARY_PATH")


def supported() -> bool:
    return sys.platform.startswith("linux") and hasattr(socket, "send_fds")


def threads_per_kernel(jobs: int) -> int:
    """Torch threads for each of ``jobs`` kernels running at once (the cores shared out)."""
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


@contextlib.contextmanager
def start(data_dir: Path | None, threads: int, device: str = "cpu", preload: tuple[str, ...] = PRELOAD):
    """A warm pool for kernels that get ``kernel_env(..., data_dir, threads, device)`` with ``preload``
    imported (:func:`.preload.preload_for` the lessons), or None where forking is not supported; the helper
    and its folder go when the block ends."""
    if not supported():
        yield None
        return
    from .limits import kernel_env

    with tempfile.TemporaryDirectory(prefix="course-grade-pool-") as tmp:
        with Zygote(kernel_env(Path(tmp), data_dir, threads, device), Path(tmp), preload) as pool:
            yield pool


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process from /proc, None if there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], fields[19]


class ForkedKernel:
    """What jupyter_client's LocalProvisioner needs of a ``Popen``, for a kernel the helper forked.

    The kernel is the helper's child, not ours: it is alive while /proc shows it with the start time it
    had when forked (a reused pid does not count) and not a zombie waiting for the helper to reap it.
    """

    stdin = stdout = stderr = None

    def __init__(self, pid: int, start: str):
        self.pid, self._start, self.returncode = pid, start, None

    def poll(self) -> int | None:
        if self.returncode is None:
            st = _stat(self.pid)
            if st is None or st[1] != self._start or st[0] in "ZX":
                self.returncode = -1  # gone; the helper reaped it and knows the code, nobody here needs it
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class Zygote:
    """The helper process and the one socket to it; :meth:`spawn` is thread-safe. Use as a context manager."""

    def __init__(self, env: dict[str, str], root: Path, preload: tuple[str, ...] = PRELOAD):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._log = open(root / "zygote.log", "ab")  # noqa: SIM115 - closed in close()
        code = "from course_utils.machinery.grading.zygote_serve import serve; serve()"
        self.proc = subprocess.Popen([sys.executable, "-c", code, str(theirs.fileno()), ",".join(preload)],
                                     env=env, cwd=root, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log, start_new_session=True)
        theirs.close()
        self.env = dict(env)
        self.sock, self._lock, self.ready = ours, threading.Lock(), None
        self.broken = ""  # why the pool stopped forking (kernels then start cold)

    def fits(self, env: dict) -> bool:
        """Whether a kernel with ``env`` may be forked from here: the settings the imports read are the same."""
        return all(self.env.get(k) == env.get(k) for k in _IMPORT_SETTINGS)

    def _wait_ready(self) -> None:
        if self.ready is None:
            self.sock.settimeout(_READY_S)
            self.ready = json.loads(self.sock.recv(1 << 16))
            self.sock.settimeout(60)
            if not self.ready.get("ready"):
                raise ValueError("the helper cannot fork")

    def spawn(self, cmd: list[str], env: dict, cwd: str, out, err, confine: dict) -> ForkedKernel:
        """Fork a kernel for ``cmd`` (``python -m ipykernel_launcher -f CONN``); raises if the helper cannot."""
        fds = [f.fileno() if hasattr(f, "fileno") else f for f in (out, err)]
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            with self._lock:
                if self.broken:
                    raise RuntimeError(self.broken)
                try:
                    self._wait_ready()
                    request = {"python": cmd[0], "argv": cmd[3:], "env": dict(env), "cwd": str(cwd),
                               "confine": confine}
                    socket.send_fds(self.sock, [json.dumps(request).encode()],
                                    [null, *(fd if fd is not None else null for fd in fds)])
                    reply = json.loads(self.sock.recv(1 << 16) or b'{"error": "the helper exited"}')
                except (OSError, ValueError) as exc:
                    self.broken = f"the warm kernel pool stopped ({type(exc).__name__}: {exc}{self._last_words()})"
                    raise RuntimeError(self.broken) from exc
        finally:
            os.close(null)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return ForkedKernel(reply["pid"], reply["start"])

    def _last_words(self) -> str:
        """The end of the helper's log, or why it said it stopped."""
        if self.ready and self.ready.get("failed"):
            return "; " + "; ".join(self.ready["failed"])
        try:
            self._log.flush()
            tail = Path(self._log.name).read_text(errors="replace").strip().splitlines()[-3:]
        except OSError:
            return ""
        return "; the helper said: " + " / ".join(tail) if tail else ""

    def close(self) -> None:
        """Stop the helper (its kernels are the grader's to shut down; one left over exits with it)."""
        self.sock.close()
        self.proc.kill()  # nothing of the helper's own needs saving
        self.proc.wait()
        self._log.close()

    def __enter__(self) -> Zygote:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def matches(cmd: list[str]) -> bool:
    """Whether ``cmd`` starts this interpreter's ipykernel, the only kernel the helper can become."""
    return (len(cmd) >= 5 and cmd[1:3] == ["-m", "ipykernel_launcher"]
            and os.path.realpath(cmd[0]) == os.path.realpath(sys.executable))
