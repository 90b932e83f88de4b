"""Fresh check helpers for every graded test cell: what an answer cell rebinds or patches changes nothing.

From exercise 2 on, test cells use ``expect``, ``expect_hash``, ``exercise`` ... as notebook globals, and
an answer cell runs in the same kernel before them: ``expect = lambda *a, **k: None`` there, or a patch
of ``course_utils.checks``, would pass every check. So the grader (and the audit, which grades the same
way) starts each graded test cell with one line that loads ``course_utils/checks.py`` again from the
grader's own copy, notes any helper the answer replaced (the new module's ``exercise`` then fails: a
replaced helper is an ✗ and 0 points, as it is in the learner's own kernel), puts the new module in
``sys.modules`` (so the test cell's own ``from course_utils.checks import ...`` gets it too) and binds its
helpers as globals.

:func:`disarmed_outside_hidden` is the audit's "hidden block alone": the same test cell with every
expectation outside ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` made a no-op, so only the
hidden inputs can reject an answer (the cell's computations and ``by_hand`` still run).
"""
from __future__ import annotations

from pathlib import Path

from ... import checks

__all__ = ["FRESH_MARK", "fresh_line", "with_fresh_checks", "disarmed_outside_hidden", "hidden_region"]

FRESH_MARK = "# fresh check helpers (the grader's)"
_BEGIN, _END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
_EXPECTS = ("expect", "expect_shape", "expect_close", "expect_equal", "expect_in_range", "expect_hash")


def fresh_line(disarm: bool = False, note: bool = True) -> str:
    """One line of Python that loads a new ``course_utils.checks`` from the grader's file and binds it.

    ``note=False`` (the audit, between two answers it tries in one kernel) binds fresh helpers without
    noting what the answer before replaced: a reset, not a verdict.
    """
    path = str(Path(checks.__file__).resolve())
    line = ("import importlib.util as _cu_iu, sys as _cu_sys; "
            f"_cu_s = _cu_iu.spec_from_file_location('course_utils.checks', {path!r}); "
            "_cu_m = _cu_iu.module_from_spec(_cu_s); _cu_s.loader.exec_module(_cu_m); "
            + ("_cu_m._TAMPERED[:] = _cu_m._replaced_helpers(globals(), _cu_sys.modules.get('course_utils.checks')); "
               if note else "") +
            "_cu_sys.modules['course_utils.checks'] = _cu_m; "
            "__import__('course_utils').checks = _cu_m; ")
    if disarm:  # every expectation does nothing while _cu_armed[0] is False (the visible part)
        names = ", ".join(repr(n) for n in _EXPECTS)
        line += ("_cu_armed = [False]; _cu_m._GUARD = False; "
                 "_cu_wrap = lambda f: __import__('functools').wraps(f)(lambda *a, **k: f(*a, **k) if _cu_armed[0] else None); "
                 f"[setattr(_cu_m, _n, _cu_wrap(getattr(_cu_m, _n))) for _n in ({names},)]; ")
    return line + "globals().update({_n: getattr(_cu_m, _n) for _n in _cu_m.__all__})  " + FRESH_MARK + "\n"


def with_fresh_checks(source: str) -> str:
    """A graded test cell's source, run with fresh check helpers."""
    return fresh_line() + source


def hidden_region(source: str) -> bool:
    """Whether a test cell has a hidden block."""
    return _BEGIN in source and _END in source


def disarmed_outside_hidden(source: str) -> str:
    """The test cell as the audit's "hidden block alone": expectations count only inside the hidden block."""
    out = []
    for line in source.splitlines():
        stripped = line.strip()
        indent = line[: len(line) - len(line.lstrip())]
        if stripped == _BEGIN:
            out += [line, f"{indent}_cu_armed[0] = True"]
        elif stripped == _END:
            out += [f"{indent}_cu_armed[0] = False", line]
        else:
            out.append(line)
    return fresh_line(disarm=True) + "\n".join(out) + "\n"
