"""The exercise audit itself can fail: on the fixture lesson 98 with tests/fixtures/grading_audit.toml it reports
an accepted wrong answer, a visible ✓ that the grader scores 0, a hidden block that accepts an answer fitted to the
visible inputs, a solution that the hidden test rejects; it counts every entry it was given; and an answer
that rebinds the check helpers or patches ``course_utils.checks`` fools only the learner's own view, not the
grader. One kernel run for all of it."""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from course_utils.machinery.grading.audit import audit_lesson, build_audit_notebook, load_wrong_answers
from course_utils.machinery.grading.collect import load_lesson
from course_utils.machinery.grading.runner import Limits

sys.path.insert(0, str(Path(__file__).parent))
from fixtures.grading_lesson import NAME, lesson  # noqa: E402

pytestmark = pytest.mark.xdist_group("grading-batch")
WRONG = Path(__file__).parent / "fixtures" / "grading_audit.toml"
# ex2's hidden test also demands an int: the lesson's own solution (a float) fails it.
STRICT = '    expect(isinstance(mean_value, int), "mean_value should be an int")\n    ### END HIDDEN TESTS'


def _lesson(folder: Path) -> Path:
    nb = lesson()
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "ex2-mean-test":
            cell.source = cell.source.replace("    ### END HIDDEN TESTS", STRICT)
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / NAME)
    return folder / NAME


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    path = _lesson(tmp_path_factory.mktemp("audit") / "notebooks")
    return audit_lesson(path, WRONG, limits=Limits(cell_timeout=60, submission_timeout=240))


def _index(why_start: str) -> tuple[str, int]:
    for gid, entries in load_wrong_answers(WRONG).items():
        for i, w in enumerate(entries):
            if w.why.startswith(why_start):
                return gid, i
    raise KeyError(why_start)


def test_counts_every_entry_it_was_given(audited):
    assert audited.entries == sum(len(v) for v in load_wrong_answers(WRONG).values()) == 6
    assert audited.checked == audited.entries
    assert audited.solutions == 2
    assert set(audited.verdicts) == {_index(w) for w in ("rejected", "accepted", "check then zero", "hidden accepts",
                                                          "the sum", "cheat")}
    assert all(set(v) == {"visible", "hidden", "points"} for v in audited.verdicts.values())


def test_reports_an_accepted_wrong_answer(audited):
    assert audited.verdicts[_index("accepted")] == {"visible": True, "hidden": True, "points": 2.0}
    assert any("visible check says ✓ (or nothing) to the wrong answer 'accepted" in p for p in audited.problems)
    assert any("grader gives 2 points to the wrong answer 'accepted" in p for p in audited.problems)


def test_reports_a_check_mark_then_zero_points(audited):
    assert audited.verdicts[_index("check then zero")] == {"visible": True, "hidden": False, "points": 0.0}
    assert any("says ✓ to 'check then zero" in p and "then the grader gives 0 points" in p for p in audited.problems)


def test_reports_a_hidden_block_that_accepts_a_fitted_answer(audited):
    assert audited.verdicts[_index("hidden accepts")] == {"visible": False, "hidden": True, "points": 0.0}
    assert any("hidden block alone accepts 'hidden accepts" in p for p in audited.problems)


def test_reports_a_solution_the_hidden_test_rejects(audited):
    assert any("ex2-mean-test: the grader gives the lesson's solution 0 of 1 points" in p for p in audited.problems)
    assert not any("ex1-flip-test: the grader gives the lesson's solution" in p for p in audited.problems)


def test_a_rejected_answer_is_no_problem(audited):
    # rejected visibly: the grader's cell, which starts with the same statements, stops at the audit's guard
    assert audited.verdicts[_index("rejected")] == {"visible": False, "hidden": None, "points": 0.0}
    assert audited.verdicts[_index("the sum")] == {"visible": False, "hidden": None, "points": 0.0}
    assert not any("'rejected" in p or "'the sum" in p for p in audited.problems)


def test_rebinding_the_helpers_fools_only_the_learners_view(audited):
    """The learner's own notebook says ✓ (their globals), the grader's fresh helpers give 0 points."""
    assert audited.verdicts[_index("cheat")] == {"visible": True, "hidden": False, "points": 0.0}


def test_every_verdict_cell_of_the_grader_starts_with_fresh_helpers(tmp_path):
    les = load_lesson(_lesson(tmp_path))
    nb, problems = build_audit_notebook(les, load_wrong_answers(WRONG))
    assert not problems
    roles = [c.metadata.get("course_audit", {}).get("role") for c in nb.cells]
    assert roles.count("visible") == 6 and roles.count("graded") == 6 + 2 and roles.count("hidden") == 6
    for cell, role in zip(nb.cells, roles):
        if role in ("graded", "hidden"):
            lines = [ln for ln in cell.source.splitlines() if not ln.startswith("if not _cu_visible_ok: raise")]
            assert lines[0].endswith("# fresh check helpers (the grader's)")
        if role == "visible":
            assert "HIDDEN" not in cell.source and "fresh check helpers" not in cell.source
