"""The grading kernel's limits: memory cap, writes confined to one folder, no signals out (Landlock).
Tests of what Landlock does are skipped, saying why, where the kernel has no Landlock."""
from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from course_utils.machinery.grading.sandbox import landlock_abi, wrapper_command

ABI = landlock_abi()
needs_landlock = pytest.mark.skipif(ABI < 1, reason="Landlock is not available on this kernel (Linux >= 5.13 "
                                                   "with landlock in the LSM list): writes cannot be confined here")


def _run(code: str, allowed: Path, memory_mb: int = 4096, args: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    cmd = [*wrapper_command(memory_mb, [allowed]), sys.executable, "-c", code, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("memory_mb, expected", [(256, "MemoryError"), (4096, "allocated")])
def test_memory_cap_decides_whether_a_512mib_allocation_works(tmp_path, memory_mb, expected):
    # The same allocation with a low and a high cap: the cap, not the machine, is what refuses it.
    code = "try:\n    b = bytearray(2**29); print('allocated')\nexcept MemoryError:\n    print('MemoryError')"
    res = _run(code, tmp_path, memory_mb)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == expected


def test_memory_mb_zero_means_no_address_space_cap(tmp_path):
    # For --device cuda: a CUDA kernel reserves far more address space than any useful cap.
    code = "import resource; print(resource.getrlimit(resource.RLIMIT_AS)[0], resource.getrlimit(resource.RLIMIT_CORE)[0])"
    assert _run(code, tmp_path, 0).stdout.split() == [str(resource.getrlimit(resource.RLIMIT_AS)[0]), "0"]
    assert _run(code, tmp_path, 300).stdout.split() == [str(300 * 2**20), "0"]


@needs_landlock
def test_writes_are_confined_to_the_allowed_folder(tmp_path):
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    inside.mkdir()
    outside.mkdir()
    (outside / "keep.txt").write_text("original")
    code = (f"from pathlib import Path\n"
            f"Path({str(inside / 'a.txt')!r}).write_text('ok'); print('inside ok')\n"
            f"for p in [{str(outside / 'new.txt')!r}, {str(outside / 'keep.txt')!r}]:\n"
            f"    try:\n        Path(p).write_text('pwned'); print('WROTE', p)\n"
            f"    except PermissionError:\n        print('blocked')\n"
            f"import os\n"
            f"try:\n    os.remove({str(outside / 'keep.txt')!r}); print('REMOVED')\n"
            f"except PermissionError:\n    print('blocked')\n"
            f"print(open({str(outside / 'keep.txt')!r}).read())")
    res = _run(code, inside)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["inside", "ok", "blocked", "blocked", "blocked", "original"]
    assert (inside / "a.txt").read_text() == "ok"
    assert not (outside / "new.txt").exists()
    assert (outside / "keep.txt").read_text() == "original"


@pytest.mark.skipif(ABI < 6, reason="Landlock signal scoping needs ABI 6 (Linux 6.12)")
def test_kernel_cannot_signal_the_grader(tmp_path):
    res = _run("import os\ntry:\n    os.kill(os.getppid(), 0); print('reached')\n"
               "except PermissionError:\n    print('blocked')", tmp_path)
    assert res.stdout.strip() == "blocked", res.stderr


def test_wrapper_passes_exit_status_and_arguments_through(tmp_path):
    # Arguments that look like the wrapper's own options, spaces and an empty one all reach the command as given.
    args = ("a", "b c", "--memory-mb", "1", "--", "")
    res = _run("import sys; print(repr(sys.argv[1:])); sys.exit(3)", tmp_path, args=args)
    assert res.returncode == 3, res.stderr
    assert res.stdout.strip() == repr(list(args))
