"""Test-run environment, set before any kernel starts (nbval and papermill kernels inherit it).

Notebooks run in the smoke profile, offline, on the CPU (the grader and the exercise audit use the CPU
too, so a GPU machine gives the same numbers in both runs), with the data cache and all outputs under
build/, so a test run leaves nothing else behind.
"""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
os.environ["COURSE_PROFILE"] = "smoke"
os.environ["COURSE_OFFLINE"] = "1"
os.environ.setdefault("COURSE_DEVICE", "cpu")
os.environ.setdefault("COURSE_DATA", str(ROOT / "build" / "test-data"))
os.environ.setdefault("COURSE_BUILD", str(ROOT / "build" / "test"))
