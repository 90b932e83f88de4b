"""``course check student/NN_topic.ipynb``: run a learner's notebook and print one line per exercise.

Like ``otter check``: the notebook runs top to bottom in a fresh kernel (the grading runner, with its
time limits and sandbox, in smoke), and for each graded test cell the learner sees the line its visible
check printed (``✓ exercise 2: ...`` or ``✗ exercise 2: ... expected ...``). Hidden tests are removed
before the run (nbgrader's ``ClearHiddenTests``, as in the learner copies), so neither their text nor
their failures can show, even when the notebook given is an instructor's copy. A ✓ here is what the
visible check promises; the grader adds the hidden inputs.
"""
from __future__ import annotations

import asyncio
import copy
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearHiddenTests

from .collect import grade_id
from .runner import Limits, kernel_env, run_notebook

__all__ = ["CheckLine", "without_hidden_tests", "check_notebook", "format_lines"]


@dataclass
class CheckLine:
    """One exercise's verdict: passed, its grade_id, and the message the learner sees."""

    passed: bool
    grade_id: str
    message: str


def without_hidden_tests(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` with every ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` region removed."""
    out, _ = ClearHiddenTests().preprocess(copy.deepcopy(nb), {})
    return out


def _printed(cell) -> list[str]:
    lines = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            text = "".join(out["text"]) if isinstance(out["text"], list) else out["text"]
            lines += [ln.strip() for ln in text.splitlines() if ln.strip().startswith(("✓", "✗"))]
    return lines


def _is_test(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and meta.get("grade") and not meta.get("solution")


def check_notebook(path: Path, limits: Limits = Limits(cell_timeout=120.0, submission_timeout=600.0),
                   data_dir: Path | None = None) -> list[CheckLine]:
    """Run ``path`` without its hidden tests; one :class:`CheckLine` per graded test cell, in order."""
    nb = without_hidden_tests(nbformat.read(path, as_version=4))
    if not any(_is_test(c) for c in nb.cells):
        raise SystemExit(f"{path} has no graded test cells: give a lesson notebook, e.g. student/04_convolutions.ipynb")
    with tempfile.TemporaryDirectory(prefix="course-check-") as tmp:
        root = Path(tmp)
        (root / "work").mkdir()
        env = kernel_env(root, data_dir, device=limits.device)
        run = asyncio.run(run_notebook(nb, root / "work", limits, env))
    lines = []
    for cell, result in zip(run.nb.cells, run.cells):
        if not _is_test(cell):
            continue
        gid = grade_id(cell) or "exercise"
        printed = _printed(cell)
        if printed:
            lines += [CheckLine(p.startswith("✓") and result.status == "ok", gid, p) for p in printed]
        elif result.status == "ok":
            lines.append(CheckLine(True, gid, f"✓ {gid}: its checks ran without error"))
        elif result.status == "error":
            lines.append(CheckLine(False, gid, f"✗ {gid}: the check raised {result.ename}: {result.evalue}"[:300]))
        else:
            why = {"timeout": "took longer than the time limit", "died": "stopped the kernel"}.get(result.status,
                                                                                                  "did not run")
            lines.append(CheckLine(False, gid, f"✗ {gid}: {why} (an earlier cell may have failed or looped)"))
    return lines


def format_lines(lines: list[CheckLine]) -> str:
    """The report: each line, then 'N of M checks pass'."""
    done = sum(line.passed for line in lines)
    return "\n".join([line.message for line in lines] + [f"{done} of {len(lines)} checks pass"])
