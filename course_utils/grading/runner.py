"""Execute one notebook for grading: a fresh sandboxed kernel, per-cell and whole-run time limits.

Built on nbclient rather than nbgrader's ``Execute`` preprocessor because grading needs what that one
lacks: a limit on the whole submission, a memory cap and write confinement on the kernel process
(see :mod:`course_utils.grading.sandbox`), and fair partial credit when one cell loops forever or
kills the kernel. When that happens the kernel is replaced and the notebook runs again from the top
with the offending cell skipped, so a runaway cell costs only its own exercise. Everything shares one
deadline, so the total time stays bounded.
"""
from __future__ import annotations

import asyncio
import copy
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from traitlets import List, Unicode

from .sandbox import wrapper_command

__all__ = ["Limits", "CellResult", "RunResult", "run_notebook", "kernel_env"]


_PASS_ENV = {"PATH", "LANG", "TZ", "PYTHONPATH", "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV",
             "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "COURSE_DEVICE"}


@dataclass(frozen=True)
class Limits:
    """Per-submission resource limits."""

    cell_timeout: float = 120.0  # s, one cell
    submission_timeout: float = 600.0  # s, the whole notebook, restarts included
    memory_mb: int = 6144  # address-space cap; importing torch alone reserves ~3.3 GB of it
    max_restarts: int = 3  # kernel replacements after a cell times out or kills the kernel


@dataclass
class CellResult:
    """What happened to one cell: ok | error | timeout | died | not run."""

    status: str = "not run"
    ename: str = ""
    evalue: str = ""
    stdout: str = ""


@dataclass
class RunResult:
    """The executed notebook and one :class:`CellResult` per cell (markdown cells stay ``not run``)."""

    nb: object
    cells: list[CellResult]
    out_of_time: bool = False  # the whole-submission deadline was reached
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager that starts the kernel through :mod:`course_utils.grading.sandbox`."""

    wrapper = List(Unicode(), help="argv prefix put before the kernel command")

    def format_kernel_cmd(self, extra_arguments=None):
        return [*self.wrapper, *super().format_kernel_cmd(extra_arguments)]


def kernel_env(root: Path, data_dir: Path | None = None, threads: int = 1) -> dict[str, str]:
    """Environment for a grading kernel: smoke profile, offline, every cache and home inside ``root``."""
    # Only what a Python kernel needs is passed on: no tokens or credentials from the grader's environment.
    env = {k: v for k, v in os.environ.items() if k in _PASS_ENV or k.startswith("LC_")}
    for name in ("home", "tmp", "data", "build", "cache"):
        (root / name).mkdir(parents=True, exist_ok=True)
    env.update({
        "COURSE_PROFILE": "smoke", "COURSE_OFFLINE": "1", "MPLBACKEND": "Agg",
        "COURSE_DATA": str(data_dir or root / "data"), "COURSE_BUILD": str(root / "build"),
        "HOME": str(root / "home"), "TMPDIR": str(root / "tmp"), "XDG_CACHE_HOME": str(root / "cache"),
        "IPYTHONDIR": str(root / "home" / ".ipython"), "MPLCONFIGDIR": str(root / "cache" / "mpl"),
        "JUPYTER_RUNTIME_DIR": str(root / "tmp"), "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": str(threads),
    })
    return env


def _record(cell, result: CellResult) -> None:
    """Fill ``result`` from the outputs nbclient stored on an executed code cell."""
    result.status = "ok"
    result.stdout = "".join(o.get("text", "") for o in cell.outputs
                            if o.output_type == "stream" and o.get("name") == "stdout")
    for out in cell.outputs:
        if out.output_type == "error":
            result.status, result.ename, result.evalue = "error", out.ename, out.evalue


async def _run_once(nb, workdir: Path, env: dict, limits: Limits, deadline: float,
                    skip: dict[int, str], results: list[CellResult]) -> tuple[int | None, str]:
    """Run every code cell not in ``skip`` in a fresh kernel; return (index, why) of a cell that
    timed out or killed the kernel, or (None, "") when the notebook finished or time ran out."""
    cpu_s = int(limits.submission_timeout * (os.cpu_count() or 1)) + 60  # stops detached busy loops too
    km = SandboxedKernelManager(kernel_name="python3",
                                wrapper=wrapper_command(limits.memory_mb, [workdir.parent], cpu_s))
    client = NotebookClient(nb, km=km, timeout=limits.cell_timeout, allow_errors=True,
                            interrupt_on_timeout=False, kernel_name="python3", startup_timeout=60,
                            resources={"metadata": {"path": str(workdir)}})
    try:
        # The kernel's own stderr (warnings, a segfault's last words) goes to a log, not the grader's terminal.
        with open(workdir.parent / "kernel-stderr.log", "ab") as log:
            await client.async_start_new_kernel(env=env, cwd=str(workdir), stderr=log, stdout=log)
        await client.async_start_new_kernel_client()
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if index in skip:
                results[index] = CellResult(skip[index])
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return None, ""
            client.timeout = max(1, math.ceil(min(limits.cell_timeout, left)))
            results[index] = CellResult("running")
            try:
                await client.async_execute_cell(cell, index)
            except CellTimeoutError:
                results[index] = CellResult("timeout")
                return (index, "timeout") if time.monotonic() < deadline else (None, "")
            except DeadKernelError:
                results[index] = CellResult("died")
                return index, "died"
            _record(cell, results[index])
        return None, ""
    finally:
        if client.kc is not None:
            client.kc.stop_channels()
        if km.has_kernel:
            await km.shutdown_kernel(now=True)


async def run_notebook(nb, workdir: Path, limits: Limits = Limits(), env: dict | None = None) -> RunResult:
    """Execute a copy of ``nb`` with its kernel confined to ``workdir.parent``; see the module docstring."""
    t0 = time.monotonic()
    deadline = t0 + limits.submission_timeout
    env = env if env is not None else kernel_env(workdir.parent)
    skip: dict[int, str] = {}
    notes: list[str] = []
    earlier: list[CellResult] = [CellResult() for _ in nb.cells]
    earlier_cells = list(nb.cells)
    for _attempt in range(limits.max_restarts + 1):
        work = copy.deepcopy(nb)
        results = [CellResult() for _ in work.cells]
        try:
            bad, why = await asyncio.wait_for(_run_once(work, workdir, env, limits, deadline, skip, results),
                                              timeout=max(0.0, deadline - time.monotonic()) + 30)
        except asyncio.TimeoutError:  # kernel start or shutdown hung past the deadline
            bad, why = None, ""
        if bad is None:
            break
        reached = [r.status not in ("not run", "running") for r in results]
        earlier = [r if ok else e for ok, r, e in zip(reached, results, earlier)]
        earlier_cells = [c if ok else e for ok, c, e in zip(reached, work.cells, earlier_cells)]
        skip[bad] = why
        name = work.cells[bad].metadata.get("nbgrader", {}).get("grade_id") or f"cell {bad}"
        notes.append(f"{name} {'timed out' if why == 'timeout' else 'killed the kernel'}; "
                     "re-ran the notebook without it")
        if time.monotonic() >= deadline:
            break
    for i, r in enumerate(results):
        if r.status == "running":
            results[i] = CellResult("timeout")
        elif r.status == "not run":  # the last attempt ran out of time before this cell: keep what ran before
            results[i], work.cells[i] = earlier[i], earlier_cells[i]
    out_of_time = time.monotonic() >= deadline or any(
        r.status == "not run" for c, r in zip(work.cells, results) if c.cell_type == "code")
    return RunResult(work, results, out_of_time, time.monotonic() - t0, notes)
