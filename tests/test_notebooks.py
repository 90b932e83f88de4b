"""Every lesson runs in smoke, records its numbers in range, reproduces its compared outputs, rejects
plausible wrong answers in every exercise, gives the same numbers when run again, and writes nothing
outside build/ and the data cache."""
from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from nbrun import LESSONS, ROOT, audit, repo_state, run_lesson, state_before
from course_utils.machinery.grading.audit import load_wrong_answers, wrong_answers_path
from course_utils.machinery.grading.collect import load_lesson
from course_utils.machinery.nbtools import compare_outputs, compared_cells
from course_utils.record import check, expected_for


class _Lesson:
    """The tests of one lesson. A class per lesson (below), so that ``--dist loadscope`` runs all of a
    lesson's tests on one worker, which executes the lesson once and audits it once (tests/nbrun.py)."""

    pytestmark = [pytest.mark.notebook]
    path: Path

    def test_runs_and_metrics_in_range(self, ranges):
        path = self.path
        res = run_lesson(path)
        assert not res.error, f"{path.name} failed: {res.error}"
        assert res.profile == "smoke", f"{path.name} ran in profile {res.profile!r}, expected smoke"
        assert res.metrics, f"{path.name} recorded no metrics: call course_utils.record(name, value)"
        expected = expected_for(ranges, path.stem, "smoke")
        assert expected, f"tests/expected/{path.stem}.toml has no [smoke] (or [any]) table"
        problems = check(res.metrics, expected)
        assert not problems, f"{path.name}: " + "; ".join(problems)

    def test_reproduces_its_compared_outputs(self):
        path = self.path
        """What nbval --nbval-lax checked, on the papermill run instead of a third execution."""
        res = run_lesson(path)
        executed = Path(os.environ["COURSE_BUILD"]) / "executed" / path.name
        assert executed.exists() and not res.error, f"{path.name} did not run: {res.error}"
        source = nbformat.read(path, as_version=4)
        diffs, n = [], 0
        for i, committed, ran in compared_cells(source, nbformat.read(executed, as_version=4)):
            n += 1
            assert committed.outputs, f"cell {i} is tagged nbval-check-output but has no committed output: run `course nb refresh`"
            why = compare_outputs(committed.outputs, ran.outputs)
            if why:
                diffs.append(f"cell {i} ({committed.source.splitlines()[0][:60]!r}): {why}")
        assert not diffs, f"{path.name}: outputs differ from the committed ones (`course nb refresh` if intended):\n" + "\n".join(diffs)

    def test_exercises_reject_wrong_answers(self):
        path = self.path
        result = audit(path)
        assert not result.problems, f"{path.name}:\n" + "\n".join(result.problems)
        assert result.entries >= 1, f"{path.name}: no wrong answers listed"
        assert result.checked == result.entries, f"{path.name}: {result.checked} of {result.entries} wrong answers checked"
        assert set(result.verdicts) == {(g, i) for g, v in load_wrong_answers(wrong_answers_path(path)).items()
                                        for i in range(len(v))}, f"{path.name}: some wrong answers got no verdict"
        assert result.solutions == len(load_lesson(path).auto), f"{path.name}: not every solution was graded"

    def test_is_deterministic_and_tidy(self):
        path = self.path
        first, second = run_lesson(path), audit(path)
        assert second.metrics, f"{path.name}: the audit run recorded nothing"
        assert second.metrics == first.metrics, (
            "same seed, different numbers between the papermill run and the audit run: something is not "
            f"seeded, or depends on an exercise answer: {json.dumps(first.metrics)} vs {json.dumps(second.metrics)}")
        before, after = state_before(path), repo_state()
        changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
        assert not changed, f"{path.name} created or changed files outside build/ and the data cache: {changed}"
        assert Path(os.environ["COURSE_DATA"]).is_relative_to(ROOT / "build")


for _path in LESSONS:  # Test_00_images_as_tensors, Test_01_image_classification, ...
    globals()[f"Test_{_path.stem}"] = type(f"Test_{_path.stem}", (_Lesson,), {"path": _path})
