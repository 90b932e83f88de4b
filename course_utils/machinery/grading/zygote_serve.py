"""The warm pool's helper process (see :mod:`.zygote`): import the preload list once, then fork one kernel
per request from the grader, each set up as a cold kernel would be before ipykernel starts."""
from __future__ import annotations

import json
import os
import select
import socket
import sys
import tempfile
import threading
import time

from .zygote import _stat

__all__ = ["serve"]


def _become_kernel(sock: socket.socket, request: dict, fds: list[int], base_path: list[str]) -> None:
    """In the forked child: take the request's place and run the kernel; never returns."""
    code = 1
    try:
        import random

        sock.close()
        os.setsid()
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
        for fd in fds:
            os.close(fd)
        # Signal dispositions stay as Python set them at start-up (SIGPIPE ignored, SIGINT raising
        # KeyboardInterrupt): the helper changes none, so the child has a cold kernel's.
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"], JPY_PARENT_PID=str(os.getppid()))
        tempfile.tempdir = None  # gettempdir() reads the kernel's TMPDIR again
        from .sandbox import confine

        confine(**request["confine"])
        random.seed()
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        import ipykernel_launcher

        sys.argv = [ipykernel_launcher.__file__, *request["argv"]]
        sys.orig_argv = [request["python"], "-m", "ipykernel_launcher", *request["argv"]]
        sys.path[:] = base_path  # as ipykernel_launcher leaves it; IPython then puts "" first
        from ipykernel import kernelapp

        kernelapp.launch_new_instance(argv=[*request["argv"], f"--IPKernelApp.parent_handle={os.getppid()}"])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    except BaseException:  # noqa: BLE001 - whatever happens, this child must not return into the helper
        import traceback

        traceback.print_exc()
    finally:
        try:
            import atexit

            atexit._run_exitfuncs()  # what a kernel's normal exit runs
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve() -> None:
    """The helper: import the preload list, say ready, then fork one kernel per request until end of file."""
    sock = socket.socket(fileno=int(sys.argv[1]))
    base_path = [p for p in sys.path[1:]]  # without -c's "": a kernel's cwd is not on its path either
    t0, loaded, failed = time.monotonic(), [], []
    for name in filter(None, sys.argv[2].split(",")):
        try:
            __import__(name)
            loaded.append(name)
        except ModuleNotFoundError:
            pass  # `from torch import tensor` reads as a module name too: not a module, nothing to preload
        except Exception as exc:  # noqa: BLE001 - a module that does not import is simply not preloaded
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    # A Python thread started by an import would be lost in the children, with whatever lock it held: then
    # the helper says so and stops. (Native pools are fine: NumPy's OpenBLAS, which starts its workers on
    # import when OMP_NUM_THREADS > 1, stops and restarts them around fork() itself.)
    threads = threading.active_count() > 1
    if threads:
        failed.append("an import started a thread, and a process with threads must not fork")
    sock.sendall(json.dumps({"ready": not threads, "loaded": loaded, "failed": failed,
                             "seconds": round(time.monotonic() - t0, 2)}).encode())
    if threads:
        return
    while True:
        readable, _, _ = select.select([sock], [], [], 0.1)
        _reap()
        if not readable:
            continue
        try:
            data, fds, _, _ = socket.recv_fds(sock, 1 << 20, 3)
        except OSError:
            return
        if not data:
            return  # the grader closed its end
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            sock.sendall(json.dumps({"error": f"fork failed: {exc}"}).encode())
            continue
        if pid == 0:
            _become_kernel(sock, json.loads(data), fds, base_path)
        for fd in fds:
            os.close(fd)
        st = _stat(pid)
        sock.sendall(json.dumps({"pid": pid, "start": st[1] if st else ""}).encode())


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
