"""The grading runner: a runaway cell costs only itself, the submission deadline stops everything, and the
kernel gets a clean environment inside its own folder. Tiny notebooks without torch, so each run is ~1 s."""
from __future__ import annotations

import asyncio

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_utils.grading.runner import Limits, kernel_env, run_notebook


def _run(tmp_path, sources: list[str], limits: Limits):
    nb = new_notebook(cells=[new_markdown_cell("# t")] + [new_code_cell(s) for s in sources])
    (tmp_path / "work").mkdir()
    return asyncio.run(run_notebook(nb, tmp_path / "work", limits, kernel_env(tmp_path)))


def test_kernel_env_passes_no_secrets_and_keeps_everything_in_its_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "secret")
    monkeypatch.setenv("COURSE_PROFILE", "full")
    env = kernel_env(tmp_path)
    assert "GITHUB_TOKEN" not in env and env["PATH"]
    assert env["COURSE_PROFILE"] == "smoke" and env["COURSE_OFFLINE"] == "1"
    for key in ("HOME", "TMPDIR", "COURSE_DATA", "COURSE_BUILD", "XDG_CACHE_HOME", "IPYTHONDIR"):
        assert env[key].startswith(str(tmp_path)), key


def test_runaway_cell_is_skipped_and_the_rest_still_runs(tmp_path):
    run = _run(tmp_path, ["a = 1", "while True:\n    pass", "import os\nprint(a + 1, os.getcwd(), os.environ['HOME'])"],
               Limits(cell_timeout=2, submission_timeout=30))
    assert [r.status for r in run.cells] == ["not run", "ok", "timeout", "ok"]
    two, cwd, home = run.cells[3].stdout.split()
    assert two == "2" and cwd == str(tmp_path / "work") and home == str(tmp_path / "home")
    assert not run.out_of_time and run.notes == ["cell 2 timed out; re-ran the notebook without it"]


def test_dead_kernel_is_replaced_and_errors_are_reported(tmp_path):
    run = _run(tmp_path, ["import os\nos._exit(1)", "1 / 0", "print('after')"],
               Limits(cell_timeout=10, submission_timeout=30))
    assert [r.status for r in run.cells] == ["not run", "died", "error", "ok"]
    assert run.cells[2].ename == "ZeroDivisionError" and run.cells[3].stdout == "after\n"


def test_submission_deadline_stops_everything(tmp_path):
    run = _run(tmp_path, ["x = 1", "import time\ntime.sleep(30)", "print(x)"],
               Limits(cell_timeout=20, submission_timeout=3))
    assert [r.status for r in run.cells] == ["not run", "ok", "timeout", "not run"]
    assert run.out_of_time and run.seconds < 10
