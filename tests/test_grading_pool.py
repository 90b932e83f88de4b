"""The warm kernel pool (grading.zygote): a forked kernel sees what a cold one sees (folder, path, argv,
environment, temp dir, limits, write confinement, threads, session), gets fresh seeds, is killed and
replaced like a cold one; a helper that dies or cannot fork leaves every kernel to start cold, with a note;
the preload list is the lessons' own imports. Tiny notebooks that import only numpy, so each run is ~1 s."""
from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course_utils.machinery.grading import zygote
from course_utils.machinery.grading.preload import BASE, preload_for
from course_utils.machinery.grading.runner import Limits, kernel_env, run_notebook
from course_utils.machinery.grading.sandbox import landlock_abi

pytestmark = pytest.mark.skipif(not zygote.supported(), reason="the warm pool forks, which needs Linux")
LIMITS = Limits(cell_timeout=20, submission_timeout=60, memory_mb=4096)
PRELOAD = (*BASE, "numpy")

# What a notebook can see of its kernel; the kernel's own folder is written as ROOT so two runs compare.
PROBE = r"""
import json, os, random, resource, signal, sys, tempfile
import numpy as np
root = os.path.dirname(os.getcwd())
def rel(x):
    return x.replace(root, "ROOT") if isinstance(x, str) else x
try:
    open(os.path.join(os.path.dirname(root), "outside.txt"), "w").write("x")
    wrote = "wrote"
except PermissionError:
    wrote = "refused"
seen = {
    "cwd": rel(os.getcwd()), "path": [rel(p) for p in sys.path], "argv0": os.path.basename(sys.argv[0]),
    "argv": [a if not a.endswith(".json") else "CONN" for a in sys.argv[1:]],
    "orig_argv": [a if not a.endswith(".json") else "CONN" for a in sys.orig_argv],
    "umask": os.umask(0o022), "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
    "env": {k: rel(v) for k, v in os.environ.items() if k != "JPY_PARENT_PID"}, "parent": "JPY_PARENT_PID" in os.environ,
    "tmp": rel(tempfile.gettempdir()), "limits": [resource.getrlimit(getattr(resource, n))
                                                 for n in ("RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_CORE")],
    "cpu_limit_set": resource.getrlimit(resource.RLIMIT_CPU)[0] != resource.RLIM_INFINITY,
    "session_leader": os.getsid(0) == os.getpid(), "write_outside": wrote, "name": __name__,
    "stdin": sys.stdin is None or not sys.stdin.isatty(), "shell": type(get_ipython()).__name__,
    "signals": {n: str(signal.getsignal(getattr(signal, n))) for n in ("SIGINT", "SIGPIPE", "SIGCHLD", "SIGTERM")},
}
print(json.dumps(seen))
print("DRAW", random.random(), np.random.rand())
"""


def _run(tmp_path: Path, name: str, sources: list[str], pool=None, limits: Limits = LIMITS):
    root = tmp_path / name
    (root / "work").mkdir(parents=True)
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    return asyncio.run(run_notebook(nb, root / "work", limits, kernel_env(root), pool))


def _probe(run) -> tuple[dict, str]:
    assert run.cells[0].status == "ok", run.cells[0]
    seen, draw = run.cells[0].stdout.strip().splitlines()
    return json.loads(seen), draw


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    with zygote.start(None, 1, "cpu", PRELOAD) as z:
        yield z


def test_a_forked_kernel_sees_what_a_cold_one_sees(tmp_path, pool):
    cold, _ = _probe(_run(tmp_path, "cold", [PROBE]))
    warm, _ = _probe(_run(tmp_path, "warm", [PROBE], pool))
    assert not pool.broken
    assert warm == cold
    assert cold["cwd"] == "ROOT/work" and cold["tmp"] == "ROOT/tmp" and cold["session_leader"] and cold["parent"]
    if landlock_abi() >= 1:
        assert cold["write_outside"] == "refused"
    assert cold["limits"][0][0] == LIMITS.memory_mb * 2**20 and cold["cpu_limit_set"]


def test_forked_kernels_do_not_share_random_state(tmp_path, pool):
    draws = {_probe(_run(tmp_path, f"k{i}", [PROBE], pool))[1] for i in range(2)}
    assert len(draws) == 2  # Python's and NumPy's global generators are seeded afresh in each child


def test_a_forked_kernel_that_dies_is_replaced_and_a_runaway_cell_skipped(tmp_path, pool):
    run = _run(tmp_path, "die", ["import os\nos._exit(1)", "while True:\n    pass", "print('after')"], pool,
               Limits(cell_timeout=2, submission_timeout=60, memory_mb=4096))
    assert [r.status for r in run.cells] == ["died", "timeout", "ok"] and not run.out_of_time
    assert run.cells[2].stdout.strip() == "after" and not pool.broken
    assert run.notes == ["cell 0 killed the kernel; re-ran the notebook without it",
                         "cell 1 timed out; re-ran the notebook without it"]


def test_a_memory_hog_meets_the_same_cap_warm(tmp_path, pool):
    run = _run(tmp_path, "hog", ["try:\n    b = bytearray(6 * 2**30)\n    print('allocated')\n"
                                 "except MemoryError:\n    print('MemoryError')"], pool)
    assert run.cells[0].stdout.strip() == "MemoryError"


def test_when_the_helper_dies_kernels_start_cold_with_a_reason(tmp_path):
    with zygote.start(None, 1, "cpu", PRELOAD) as z:
        z._wait_ready()
        z.proc.kill()
        z.proc.wait()
        run = _run(tmp_path, "after-death", ["print(6 * 7)"], z)
        assert run.cells[0].stdout.strip() == "42"
        assert "the warm kernel pool stopped" in z.broken


def test_a_helper_whose_imports_start_a_thread_refuses_to_fork(tmp_path, monkeypatch):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "starts_a_thread.py").write_text(
        "import threading, time\nthreading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "lib"))
    with zygote.start(None, 1, "cpu", (*BASE, "starts_a_thread")) as z:
        run = _run(tmp_path, "threads", ["print('cold')"], z)
        assert run.cells[0].stdout.strip() == "cold"
        assert "thread" in z.broken


def test_preload_is_what_the_lessons_import_on_their_own(tmp_path):
    lesson = new_notebook(cells=[
        new_code_cell("%matplotlib inline\nimport numpy as np\nimport os, json\nfrom torch import nn"),
        new_code_cell("def later():\n    import scipy.signal\n    return scipy"),
        new_code_cell("import evil_module\ntry:\n    import tomllib\nexcept ImportError:\n    import tomli"),
        new_code_cell("x = course_utils.data.load_tensors('cifar10', 'train', cfg)"),
        new_code_cell("import timm  # reads its cache folder from $HOME on import: never preloaded"),
        new_code_cell("this is not python"),
    ])
    path = tmp_path / "01_made_up.ipynb"
    path.write_text(json.dumps(lesson))
    mods = preload_for([path])
    assert mods[:len(BASE)] == BASE
    assert {"numpy", "torch", "torch.nn", "course_utils.data", "course_utils.data.datasets"} <= set(mods)
    assert not {"scipy", "scipy.signal", "evil_module", "os", "json", "timm", "tomli"} & set(mods)
    assert "course_utils.data.load_tensors" not in mods  # a function, found through data's _LAZY table
    # datasets imports torchvision.datasets on import, so it is preloaded; nothing of timm's is
    assert "torchvision.datasets" in mods and not any(m.startswith(("timm", "open_clip")) for m in mods)


def test_preload_of_a_real_lesson_holds_only_what_its_run_imports():
    # Lesson 02's run (tests/test_notebooks.py) imports all of these; the list must not grow a library it does not use.
    mods = set(preload_for(sorted(Path(__file__).parents[1].glob("notebooks/02_*.ipynb"))))
    assert {"torch", "torch._dynamo", "matplotlib.pyplot", "course_utils.train.fit"} <= mods
    assert {m.split(".")[0] for m in mods} <= {"IPython", "ipykernel", "numpy", "torch", "torchvision", "matplotlib",
                                               "tqdm", "course_utils"}
    assert all(m.startswith("torchvision.datasets") for m in mods if m.startswith("torchvision"))


def test_preload_for_imports_nothing_heavy_in_the_grader():
    import subprocess

    code = ("import sys; from pathlib import Path; from course_utils.machinery.grading.preload import preload_for; "
            "preload_for(sorted(Path('notebooks').glob('*.ipynb'))); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).parents[1], timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_a_kernel_with_other_thread_or_device_settings_is_not_forked_from_the_pool(tmp_path, pool):
    root = tmp_path / "other"
    (root / "work").mkdir(parents=True)
    env = kernel_env(root, threads=2)  # the pool imported numpy (and its BLAS threads) with 1
    assert not pool.fits(env) and pool.fits(kernel_env(root))
    nb = new_notebook(cells=[new_code_cell("import os\nprint(os.getppid(), os.environ['OMP_NUM_THREADS'])")])
    run = asyncio.run(run_notebook(nb, root / "work", LIMITS, env, pool))
    import os

    assert run.cells[0].stdout.split() == [str(os.getpid()), "2"] and not pool.broken  # started cold, by us
    warm = asyncio.run(run_notebook(nb, root / "work", LIMITS, kernel_env(root), pool))
    assert warm.cells[0].stdout.split() == [str(pool.proc.pid), "1"]  # forked by the pool


def _printed(executed: Path) -> list[str]:
    """Each code cell's printed text, with the kernel's temp folder and timings masked."""
    import re

    import nbformat

    out = []
    for cell in nbformat.read(executed, 4).cells:
        if cell.cell_type == "code":
            text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
            text = re.sub(r"/\S*course-grade-\w+", "ROOT", text)
            text = re.sub(r"\b(seconds|images_per_s)\s+[\d.e+-]+", r"\1 T", text)  # fit's per-epoch timings
            out.append(re.sub(r"\d+(\.\d+)?( ?s\b|s/it|it/s| ms)", "T", text))
    return out


def test_a_real_lesson_prints_and_scores_the_same_warm_and_cold(tmp_path):
    # Lesson 02 trains two classifiers and prints their losses and accuracies: every printed number and every
    # point must be the same whether the kernel was forked from the pool or started cold. (The grader's own
    # limits: a forked kernel holds the preloaded torch, ~3.6 GB of address space, from its first cell on.)
    from course_utils.machinery.grading.grade import grade_submissions

    lesson = next(Path(__file__).parents[1].glob("notebooks/02_*.ipynb"))
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    (tmp_path / "subs" / "ann" / lesson.name).write_bytes(lesson.read_bytes())
    rows = {}
    for way, warm in (("warm", True), ("cold", False)):
        out = tmp_path / way / "grades.csv"
        rows[way] = grade_submissions(tmp_path / "subs", [lesson], out, limits=Limits(), progress=False, warm=warm)
    strip = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in strip} for r in rows["warm"]] == \
           [{k: v for k, v in r.items() if k not in strip} for r in rows["cold"]]
    assert rows["warm"][0]["status"] == "ok" and rows["warm"][0]["total"] == rows["warm"][0]["max"]
    warm, cold = (next((tmp_path / w / "grades-executed").glob("*.ipynb")) for w in ("warm", "cold"))
    assert _printed(warm) == _printed(cold)
    assert any("loss" in text for text in _printed(warm))  # the comparison covers the training's numbers
