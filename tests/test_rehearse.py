"""course rehearse: which data each lesson declares, the committed timing table, and the README's copy of it."""
from __future__ import annotations

import json
import re

import pytest

from course_utils.machinery import rehearse
from course_utils.machinery.nbtools import ROOT, lesson_notebooks
from course_utils.machinery.report import NotebookResult


def test_lesson_datasets_reads_the_setup_call():
    found = {p.stem: rehearse.lesson_datasets(p) for p in lesson_notebooks()}
    assert found["00_images_as_tensors"] == []
    assert found["01_image_classification"] == ["cifar10"]
    assert found["08_transfer_learning"] == ["pets"]


def test_merge_keeps_other_lessons_and_writes_the_report_format(tmp_path):
    path = tmp_path / "rehearse-light.json"
    first = [NotebookResult("00_a", "ok", 61.0, "light", "cpu", cpu_seconds=100.0, rehearsal=True),
             NotebookResult("01_b", "ok", 125.0, "light", "cpu", cpu_seconds=230.0, rehearsal=True)]
    rehearse.merge_measurements(path, "light", first, seed=0, threads=2, loads={"00_a": 3.5})
    again = [NotebookResult("01_b", "ok", 90.0, "light", "cpu", cpu_seconds=170.0, rehearsal=True),
             NotebookResult("02_c", "failed", 5.0, "light", "cpu", cpu_seconds=4.0, rehearsal=True)]
    table = rehearse.merge_measurements(path, "light", again, seed=1, threads=2, loads={},
                                        peaks={"01_b": 1200.4, "02_c": 2100.0})
    assert json.loads(path.read_text()) == table
    for key in ("label", "hardware", "torch", "seconds", "date", "seeds"):  # what report.read_runs and README need
        assert key in table
    assert table["seconds"] == {"00_a": 61.0, "01_b": 90.0}  # merged; a failed run is not a timing
    assert table["cpu_seconds"] == {"00_a": 100.0, "01_b": 170.0} and table["seeds"] == [0, 1]
    assert table["load_average"] == {"00_a": 3.5} and table["threads"] == 2 and "rehearsal" in table["label"]
    assert table["peak_rss_mib"] == {"01_b": 1200}  # MiB, rounded; none for a failed run


def test_memory_only_merges_the_peaks_and_keeps_the_times(tmp_path):
    """A run on a busy machine (--memory-only): its peak memory counts, its slower times do not."""
    path = tmp_path / "rehearse-light.json"
    quiet = [NotebookResult("00_a", "ok", 61.0, "light", "cpu", cpu_seconds=100.0, rehearsal=True)]
    rehearse.merge_measurements(path, "light", quiet, seed=0, threads=2, loads={"00_a": 0.5})
    path.write_text(path.read_text().replace(json.loads(path.read_text())["hardware"], "the quiet machine"))
    busy = [NotebookResult("00_a", "ok", 150.0, "light", "cpu", cpu_seconds=130.0, rehearsal=True)]
    table = rehearse.merge_measurements(path, "light", busy, seed=0, threads=2, loads={"00_a": 9.0},
                                        peaks={"00_a": 900.2}, memory_only=True)
    assert table["seconds"] == {"00_a": 61.0} and table["cpu_seconds"] == {"00_a": 100.0}
    assert table["load_average"] == {"00_a": 0.5} and table["peak_rss_mib"] == {"00_a": 900}
    assert table["memory"]["how"].startswith("as on Binder") and table["hardware"] == "the quiet machine"
    assert "peak memory:" in rehearse.measurements_table(tmp_path, ["00_a"])


def test_table_marks_unmeasured_lessons(tmp_path):
    (tmp_path / "rehearse-light.json").write_text(json.dumps({
        "label": "light rehearsal", "profile": "light", "hardware": "a CPU, 2 cores", "threads": 2, "torch": "2.x",
        "date": "2026-01-02", "seeds": [0], "seconds": {"00_a": 90.0}, "cpu_seconds": {"00_a": 150.0},
        "dates": {"00_a": "2026-01-02"}}))
    md = rehearse.measurements_table(tmp_path, ["00_a", "09_z"])
    assert "| 00_a | 1.5 (2.5) | to be measured |" in md and "| 09_z | to be measured | to be measured |" in md
    assert "a CPU, 2 cores, 2 torch threads" in md


def test_readme_shows_the_committed_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in sorted(rehearse.MEASUREMENTS.glob("rehearse-*.json")):
        table = json.loads(path.read_text())
        for name, seconds in table["seconds"].items():
            row = re.search(rf"^\| {name} \|(.*)$", readme, re.M)
            assert row, f"README has no row for {name}: run `course rehearse --table` and paste it"
            assert f"{seconds / 60:.1f}" in row.group(1), f"README's {name} row is not {path.name}'s"


def test_rehearse_runs_light_or_full_only():
    with pytest.raises(ValueError, match="a rehearsal runs light or full"):
        rehearse.rehearse("smoke")


def test_peak_memory_sums_the_kernel_and_its_children():
    """A child that holds 300 MiB and starts a grandchild holding 200 MiB: the peak is their sum."""
    import subprocess
    import sys
    import textwrap
    import time

    hold = "import sys, time; block = bytearray({mib} * 2 ** 20); block[::4096] = b'x' * len(block[::4096]); "
    child = textwrap.dedent(f"""
        import subprocess, sys, time
        {hold.format(mib=300)}
        g = subprocess.Popen([sys.executable, "-c", "{hold.format(mib=200)}time.sleep(3)"])
        time.sleep(3); g.wait()
    """)
    with rehearse.PeakMemory(every=0.1) as memory:
        memory.start("00_a")
        proc = subprocess.Popen([sys.executable, "-c", child])
        proc.wait()
        time.sleep(0.3)
        memory.start("01_b")  # the next lesson starts from nothing
        time.sleep(0.3)
    assert 500 <= memory.peaks_mib["00_a"] < 650, memory.peaks_mib
    assert memory.peaks_mib["01_b"] < 50


def test_table_shows_peak_memory(tmp_path):
    (tmp_path / "rehearse-light.json").write_text(json.dumps({
        "label": "light rehearsal", "profile": "light", "hardware": "a CPU", "threads": 2, "torch": "2.x",
        "date": "2026-01-02", "seeds": [0], "seconds": {"00_a": 90.0}, "peak_rss_mib": {"00_a": 1331}}))
    assert "| 00_a | 1.5 | 1.30 GiB |" in rehearse.measurements_table(tmp_path, ["00_a"])
