"""The grading runner: a runaway cell costs only itself, the submission deadline stops everything, exit()
is blamed on its own cell, stored output is capped, and the kernel gets a clean CPU-only environment
inside its own folder. Tiny notebooks without torch, so each run is ~1 s."""
from __future__ import annotations

import asyncio

import pytest

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_utils.machinery.grading.runner import Limits, kernel_env, run_notebook


def _run(tmp_path, sources: list[str], limits: Limits, env: dict | None = None):
    nb = new_notebook(cells=[new_markdown_cell("# t")] + [new_code_cell(s) for s in sources])
    (tmp_path / "work").mkdir()
    return asyncio.run(run_notebook(nb, tmp_path / "work", limits, env or kernel_env(tmp_path)))


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")


def test_kernel_env_passes_no_secrets_and_keeps_everything_in_its_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "secret")
    monkeypatch.setenv("COURSE_PROFILE", "full")
    env = kernel_env(tmp_path)
    assert "GITHUB_TOKEN" not in env and env["PATH"]
    assert env["COURSE_PROFILE"] == "smoke" and env["COURSE_OFFLINE"] == "1"
    for key in ("HOME", "TMPDIR", "COURSE_DATA", "COURSE_BUILD", "XDG_CACHE_HOME", "IPYTHONDIR"):
        assert env[key].startswith(str(tmp_path)), key


def test_kernels_run_on_the_cpu_unless_asked_otherwise(tmp_path, monkeypatch):
    # A grader on a GPU machine: its own environment names the GPU.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    env = kernel_env(tmp_path)
    assert (env["CUDA_VISIBLE_DEVICES"], env["COURSE_DEVICE"]) == ("", "cpu")
    env = kernel_env(tmp_path, device="auto")
    assert (env["CUDA_VISIBLE_DEVICES"], env["COURSE_DEVICE"]) == ("0", "cuda")
    env = kernel_env(tmp_path, device="cuda:1")
    assert (env["CUDA_VISIBLE_DEVICES"], env["COURSE_DEVICE"]) == ("0", "cuda:1")


def test_runaway_cell_is_skipped_and_the_rest_still_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    show = "import os\nprint(a + 1, os.getcwd(), os.environ['HOME'], os.environ['COURSE_DEVICE'], " \
           "repr(os.environ['CUDA_VISIBLE_DEVICES']))"
    run = _run(tmp_path, ["a = 1", "while True:\n    pass", show], Limits(cell_timeout=2, submission_timeout=30))
    assert [r.status for r in run.cells] == ["not run", "ok", "timeout", "ok"]
    two, cwd, home, device, visible = run.cells[3].stdout.split()
    assert two == "2" and cwd == str(tmp_path / "work") and home == str(tmp_path / "home")
    assert (device, visible) == ("cpu", "''")  # no GPU, whatever the grader's machine has
    assert not run.out_of_time and run.notes == ["cell 2 timed out; re-ran the notebook without it"]


def test_dead_kernel_is_replaced_and_errors_are_reported(tmp_path):
    run = _run(tmp_path, ["import os\nos._exit(1)", "1 / 0", "print('after')"],
               Limits(cell_timeout=10, submission_timeout=30))
    assert [r.status for r in run.cells] == ["not run", "died", "error", "ok"]
    assert run.cells[2].ename == "ZeroDivisionError" and run.cells[3].stdout == "after\n"


def test_exit_and_quit_are_blamed_on_the_cell_that_called_them(tmp_path):
    # ipykernel answers an exit() cell normally and stops afterwards: the *next* cell used to get the blame.
    run = _run(tmp_path, ["a = 1", "print('bye')\nexit()", "b = 2\nquit()", "print(a)"],
               Limits(cell_timeout=10, submission_timeout=60))
    assert [(r.status, r.ename) for r in run.cells] == [("not run", ""), ("ok", ""), ("died", "exit"),
                                                        ("died", "exit"), ("ok", "")]
    assert run.cells[4].stdout == "1\n"
    assert run.notes == [f"cell {i} called exit() or quit(), which stops the kernel; re-ran the notebook without it"
                         for i in (2, 3)]


def test_submission_deadline_stops_everything(tmp_path):
    run = _run(tmp_path, ["x = 1", "import time\ntime.sleep(30)", "print(x)"],
               Limits(cell_timeout=20, submission_timeout=3))
    assert [r.status for r in run.cells] == ["not run", "ok", "timeout", "not run"]
    assert run.out_of_time and run.seconds < 10


def test_stored_output_is_capped_per_cell_and_per_notebook(tmp_path):
    kb = 1024
    # 20 KiB of printed text per cell, 50 KiB per notebook; every cell keeps its first 8 KiB regardless.
    limits = Limits(cell_timeout=20, submission_timeout=60, cell_text_mb=20 / kb, cell_output_mb=40 / kb,
                    notebook_output_mb=50 / kb)
    run = _run(tmp_path, ["print('a' * 15000)"] * 3 + ["print('b' * 15000)",
               "for i in range(3000):\n    print('c' * 99)",
               "raise ValueError('e' * 200000)",
               "'r' * 200000"], limits)
    texts = [_text(c) for c in run.nb.cells[1:6]]
    assert [len(t) for t in texts] == [15001, 15001, 15001, 8 * kb, 8 * kb]
    assert texts[4] == ("c" * 99 + "\n") * 81 + "c" * 92  # the head of the flood, nothing after
    assert [r.output_cut for r in run.cells[1:]] == [False] * 3 + [True] * 4
    assert "[course grade: output dropped here" in run.nb.cells[5].outputs[-1].text
    # what scoring reads is kept, shortened: the error decides the status, the result is there
    assert (run.cells[6].status, run.cells[6].ename) == ("error", "ValueError")
    result = [o for o in run.nb.cells[7].outputs if o.output_type == "execute_result"]
    assert len(result) == 1 and 1000 < len(result[0].data["text/plain"]) <= 64 * kb
    assert run.notes == ["output of cell 4, cell 5, cell 6, cell 7 was cut: the grader keeps 0.0195312 MB of "
                         "printed text and 0.0390625 MB of output per cell, 0.0488281 MB per notebook"]


def test_a_print_loop_until_the_time_limit_keeps_only_the_cap(tmp_path):
    limits = Limits(cell_timeout=3, submission_timeout=60, cell_text_mb=0.1)
    flood = "import sys\nwhile True:\n    print('x' * 1000)"
    run = _run(tmp_path, ["a = 1", flood, "print(a)"], limits)
    assert [r.status for r in run.cells] == ["not run", "ok", "timeout", "ok"]
    assert run.cells[2].output_cut and run.cells[3].stdout == "1\n"
    assert "cell 2 timed out" in run.notes[0] and "output of cell 2 was cut" in run.notes[1]


def test_a_kernel_that_dies_at_start_is_started_again(tmp_path, monkeypatch):
    """A kernel that loses the race for its ports dies before its first reply: not the submission's fault."""
    from course_utils.machinery.grading import runner

    real, failures = runner.CappedNotebookClient.async_start_new_kernel_client, []

    async def flaky(self):
        if len(failures) < runner.START_TRIES - 1:
            failures.append(self.km.kernel_id)
            await self.km.shutdown_kernel(now=True)  # as if it had died
            raise RuntimeError("Kernel died before replying to kernel_info")
        return await real(self)

    monkeypatch.setattr(runner.CappedNotebookClient, "async_start_new_kernel_client", flaky)
    run = _run(tmp_path, ["print(6 * 7)"], Limits(cell_timeout=10, submission_timeout=60))
    assert len(failures) == runner.START_TRIES - 1 and len(set(failures)) == len(failures)  # a new kernel each time
    assert [r.status for r in run.cells] == ["not run", "ok"] and run.cells[1].stdout.strip() == "42"


def test_a_kernel_that_never_starts_is_an_error_not_a_hang(tmp_path, monkeypatch):
    from course_utils.machinery.grading import runner

    async def dead(self):
        raise RuntimeError("Kernel died before replying to kernel_info")

    monkeypatch.setattr(runner.CappedNotebookClient, "async_start_new_kernel_client", dead)
    with pytest.raises(RuntimeError, match="died before replying"):
        _run(tmp_path, ["print(1)"], Limits(cell_timeout=10, submission_timeout=60))
