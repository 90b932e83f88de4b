"""Execute one notebook for grading: a fresh sandboxed kernel, per-cell and whole-run time limits.

Built on nbclient rather than nbgrader's ``Execute`` preprocessor because grading needs what that one
lacks: a limit on the whole submission, a memory cap and write confinement on the kernel process
(see :mod:`course_utils.machinery.grading.sandbox`), and fair partial credit when one cell loops forever or
kills the kernel (``exit()`` and ``quit()`` included). When that happens the kernel is replaced and the
notebook runs again from the top with the offending cell skipped, so a runaway cell costs only its own
exercise. Everything shares one deadline, so the total time stays bounded.

Stored output is capped (:class:`Limits`): a cell keeps at most ``cell_text_mb`` of printed text and
``cell_output_mb`` of output in all, a notebook ``notebook_output_mb`` (each cell still keeps its first
8 KB); what comes after is dropped as it arrives, so a print loop that runs until the time limit costs
the grader no memory. Errors and results (what scoring reads) are always kept, shortened if need be.
Kernels run on the CPU unless ``Limits.device`` says otherwise (a GPU kernel needs far more address
space than the memory cap allows). Given a warm pool (:mod:`.zygote`), each kernel is forked from it under
the same limits instead of started cold; where the pool cannot serve, the kernel starts cold.
"""
from __future__ import annotations

import asyncio
import copy
import dataclasses
import math
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.v4 import new_output
from traitlets import Any, Dict, Type

from .capture import CappedNotebookClient, cut_note
from .limits import Limits, kernel_env
from .sandbox import wrapper_command
from .zygote import Zygote, matches

__all__ = ["Limits", "CellResult", "RunResult", "run_notebook", "kernel_env"]


@dataclass
class CellResult:
    """What happened to one cell: ok | error | timeout | died | not run."""

    status: str = "not run"
    ename: str = ""  # "exit" when the cell called exit() or quit()
    evalue: str = ""
    stdout: str = ""
    output_cut: bool = False  # some of its output was dropped (the caps in Limits)


@dataclass
class RunResult:
    """The executed notebook and one :class:`CellResult` per cell (markdown cells stay ``not run``)."""

    nb: object
    cells: list[CellResult]
    out_of_time: bool = False  # the whole-submission deadline was reached
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


class ForkProvisioner(LocalProvisioner):
    """Starts the kernel by asking its manager's warm pool (:mod:`.zygote`) to fork one, under the manager's
    limits; a kernel the pool cannot be starts cold, through the sandbox wrapper."""

    async def launch_kernel(self, cmd: list[str], **kwargs) -> dict:
        pool, cwd = self.parent.zygote, kwargs.get("cwd") or os.getcwd()
        env = kwargs.get("env") or dict(os.environ)
        if not pool.broken and matches(cmd) and pool.fits(env):
            try:
                self.process = await asyncio.to_thread(pool.spawn, cmd, env, cwd, kwargs.get("stdout"),
                                                       kwargs.get("stderr"), self.parent.confine)
            except RuntimeError:
                pass  # the pool failed (its reason is in zygote.broken): this kernel starts cold
            else:
                self.pid = self.pgid = self.process.pid  # the child made itself a session leader
                self.cwd = cwd
                return self.connection_info
        return await super().launch_kernel(self.parent.wrapped(cmd), **kwargs)


class QuickReadyClient(AsyncKernelClient):
    """jupyter_client's kernel client, except for the end of ``wait_for_ready``: once the kernel has answered
    kernel_info and IOPub has delivered a message (so it is connected), it takes what IOPub already holds
    instead of waiting for 0.2 s of silence there. That wait was idle time at every kernel start, and no
    left-over message can reach a notebook: nbclient keeps only messages whose parent is the cell it runs."""

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout if timeout is not None else math.inf)
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                try:
                    await self.iopub_channel.get_msg(timeout=0.2)
                except Empty:
                    pass  # IOPub not connected yet: ask again
                else:
                    self._handle_kernel_info_reply(reply)
                    break
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")
        while True:
            try:
                await self.iopub_channel.get_msg(timeout=0.01)
            except Empty:
                return


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager that starts the kernel under the grading limits (``confine``: the arguments of
    :func:`.sandbox.confine`) through the :mod:`course_utils.machinery.grading.sandbox` wrapper, or forks
    it from the warm pool when it has one (``zygote``) under the same limits."""

    confine = Dict(help="memory_mb, write (folders) and cpu_s, as sandbox.confine takes them")
    client_factory = Type(QuickReadyClient, klass=AsyncKernelClient)
    zygote = Any(None, allow_none=True)

    def wrapped(self, cmd: list[str]) -> list[str]:
        """``cmd`` behind the sandbox wrapper, which applies ``confine`` and then execs it."""
        c = self.confine
        return [*wrapper_command(c["memory_mb"], [Path(w) for w in c["write"]], c["cpu_s"]), *cmd]

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        return cmd if self.zygote is not None else self.wrapped(cmd)

    async def _async_pre_start_kernel(self, **kw):
        if self.zygote is not None and self.provisioner is None:
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
            self.provisioner = ForkProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self)
        return await super()._async_pre_start_kernel(**kw)


def _asked_exit(reply: dict | None) -> bool:
    """Whether an execute reply says the cell called exit()/quit(), after which ipykernel stops."""
    payload = (reply or {}).get("content", {}).get("payload", [])
    return any(p.get("source") == "ask_exit" and not p.get("keepkernel") for p in payload)


def _record(cell, result: CellResult, reply: dict | None = None) -> None:
    """Fill ``result`` from the outputs nbclient stored on an executed code cell and the kernel's reply."""
    result.status = "ok"
    result.stdout = "".join(o.get("text", "") for o in cell.outputs
                            if o.output_type == "stream" and o.get("name") == "stdout")
    for out in cell.outputs:
        if out.output_type == "error":
            result.status, result.ename, result.evalue = "error", out.ename, out.evalue
    content = (reply or {}).get("content", {})
    if content.get("status") == "error" and result.status == "ok":  # its error output was not kept
        result.status, result.ename, result.evalue = "error", content.get("ename", ""), content.get("evalue", "")[:300]


def _cut(cell, index: int, result: CellResult, client: CappedNotebookClient, limits: Limits) -> CellResult:
    """Mark a cell whose output was dropped, in its result and (for the reader) in its outputs."""
    if index in client.cut:
        result.output_cut = True
        cell.outputs.append(new_output("stream", name="stderr", text=f"\n{cut_note(limits)}\n"))
    return result


START_TRIES = 3  # a kernel that dies before its first reply is started again, on fresh ports


async def _stop(km: SandboxedKernelManager, client: CappedNotebookClient) -> None:
    if client.kc is not None:
        client.kc.stop_channels()
    if km.has_kernel:
        await km.shutdown_kernel(now=True)


async def _start_kernel(nb, workdir: Path, env: dict, limits: Limits, replies: dict[int, dict],
                        pool: Zygote | None = None) -> tuple[SandboxedKernelManager, CappedNotebookClient]:
    """A sandboxed kernel for ``nb`` and the client that runs it.

    jupyter_client picks free ports and the kernel binds them a moment later; on a busy machine another
    process can take one in between, and the kernel dies before its first reply ("Kernel died before
    replying to kernel_info"). That is not the submission's doing, so the start is tried again on new ports.
    """
    cpu_s = int(limits.submission_timeout * (os.cpu_count() or 1)) + 60  # stops detached busy loops too
    for attempt in range(1, START_TRIES + 1):
        km = SandboxedKernelManager(kernel_name="python3", zygote=pool, confine={
            "memory_mb": limits.memory_mb, "write": [str(workdir.parent)], "cpu_s": cpu_s})
        client = CappedNotebookClient(nb, km=km, limits=limits, timeout=limits.cell_timeout, allow_errors=True,
                                      interrupt_on_timeout=False, kernel_name="python3", startup_timeout=60,
                                      store_widget_state=False, resources={"metadata": {"path": str(workdir)}},
                                      on_cell_executed=lambda cell, cell_index, execute_reply:
                                          replies.__setitem__(cell_index, execute_reply))
        try:
            # The kernel's own stderr (warnings, a segfault's last words) goes to a log, not the grader's terminal.
            with open(workdir.parent / "kernel-stderr.log", "ab") as log:
                await client.async_start_new_kernel(env=env, cwd=str(workdir), stderr=log, stdout=log)
            await client.async_start_new_kernel_client()
            return km, client
        except RuntimeError:
            await _stop(km, client)
            if attempt == START_TRIES:
                raise


async def _run_once(nb, workdir: Path, env: dict, limits: Limits, deadline: float, skip: dict[int, CellResult],
                    results: list[CellResult], pool: Zygote | None = None) -> tuple[int | None, str]:
    """Run every code cell not in ``skip`` in a fresh kernel; return (index, why) of a cell that
    timed out or killed the kernel, or (None, "") when the notebook finished or time ran out."""
    replies: dict[int, dict] = {}
    km, client = await _start_kernel(nb, workdir, env, limits, replies, pool)
    try:
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if index in skip:
                results[index] = dataclasses.replace(skip[index])
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return None, ""
            client.timeout = max(1, math.ceil(min(limits.cell_timeout, left)))
            results[index] = CellResult("running")
            try:
                await client.async_execute_cell(cell, index)
            except CellTimeoutError:
                results[index] = _cut(cell, index, CellResult("timeout"), client, limits)
                return (index, "timeout") if time.monotonic() < deadline else (None, "")
            except DeadKernelError:
                results[index] = _cut(cell, index, CellResult("died"), client, limits)
                return index, "died"
            _record(cell, results[index], replies.get(index))
            _cut(cell, index, results[index], client, limits)
            if _asked_exit(replies.get(index)):  # the kernel stops after this reply: blame this cell
                results[index].status, results[index].ename = "died", "exit"
                return index, "exit"
        return None, ""
    finally:
        await _stop(km, client)


async def run_notebook(nb, workdir: Path, limits: Limits = Limits(), env: dict | None = None,
                       pool: Zygote | None = None) -> RunResult:
    """Execute a copy of ``nb`` with its kernel confined to ``workdir.parent``; see the module docstring.
    With ``pool`` (:class:`.zygote.Zygote`), kernels are forked warm from it instead of started cold."""
    t0 = time.monotonic()
    deadline = t0 + limits.submission_timeout
    env = env if env is not None else kernel_env(workdir.parent, device=limits.device)
    skip: dict[int, CellResult] = {}  # cells that timed out or stopped the kernel, and how
    notes: list[str] = []
    earlier: list[CellResult] = [CellResult() for _ in nb.cells]
    earlier_cells = list(nb.cells)
    for _attempt in range(limits.max_restarts + 1):
        work = copy.deepcopy(nb)
        results = [CellResult() for _ in work.cells]
        try:
            bad, why = await asyncio.wait_for(_run_once(work, workdir, env, limits, deadline, skip, results, pool),
                                              timeout=max(0.0, deadline - time.monotonic()) + 30)
        except asyncio.TimeoutError:  # kernel start or shutdown hung past the deadline
            bad, why = None, ""
        if bad is None:
            break
        reached = [r.status not in ("not run", "running") for r in results]
        earlier = [r if ok else e for ok, r, e in zip(reached, results, earlier)]
        earlier_cells = [c if ok else e for ok, c, e in zip(reached, work.cells, earlier_cells)]
        skip[bad] = dataclasses.replace(results[bad], stdout="")
        what = {"timeout": "timed out", "exit": "called exit() or quit(), which stops the kernel"}
        notes.append(f"{_name(work.cells[bad], bad)} {what.get(why, 'killed the kernel')}; "
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
    cut = [_name(c, i) for i, (c, r) in enumerate(zip(work.cells, results)) if r.output_cut]
    if cut:
        notes.append(f"output of {', '.join(cut)} was cut: the grader keeps {limits.cell_text_mb:g} MB of printed "
                     f"text and {limits.cell_output_mb:g} MB of output per cell, {limits.notebook_output_mb:g} MB "
                     "per notebook")
    return RunResult(work, results, out_of_time, time.monotonic() - t0, notes)


def _name(cell, index: int) -> str:
    return cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index}"
