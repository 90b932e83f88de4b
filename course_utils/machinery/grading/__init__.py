"""Grading: learner copies of the lessons (``course student``) and offline batch grading (``course grade``).

    student   nbgrader markup -> student/NN_topic.ipynb (stubs with hints, hidden tests removed)
    collect   which files in a submissions folder are submissions, of which lesson
    grade     a folder of submissions -> grades.csv + one feedback file per submission
    sheet     grades.csv: rows keyed by (student, lesson, file), kept across runs, formula-safe text
    runner    executes one notebook in a sandboxed kernel with time limits and capped output, on the CPU
    sandbox   the kernel's limits: address-space cap, writes confined to its temp dir (Landlock)
    zygote    the warm kernel pool: kernels forked from one helper that imported the lessons' imports once
              (preload: which imports; zygote_serve: the helper's side)
    audit     plausible wrong answers through each lesson's visible checks and the grader (``course audit``)
    cli       the ``course student``, ``course grade`` and ``course audit`` commands

Nothing here runs on import; submodules load when used.
"""
from __future__ import annotations

__all__ = ["student", "collect", "grade", "sheet", "runner", "sandbox", "audit", "cli"]
