"""Friendly checks for exercise test cells: ``✓ exercise 2: ...`` or ``✗ exercise 2: ... expected ...``.

A test cell reads::

    with exercise(2, "conv2d matches torch"):
        with by_hand(F.conv2d):                  # the exercise says "by hand": the library call is refused
            out = my_conv2d(x, w)
        expect_shape(out, (1, 8, 30, 30))
        expect_close(out, F.conv2d(x, w))        # a reference computed on the test's own inputs
        expect_hash(n_windows, "3f1c9a2b77e0")   # a number to derive, checked without showing it

Inside the block a failed expectation raises ``AssertionError`` with a message that says what was
expected and what came instead; an unsolved exercise (``NotImplementedError``) says so plainly. The
error still propagates, so nbgrader scores the cell as failed. Needs nothing but this package.

What a visible check must do (the learner on Colab sees nothing else): accept the right answer and
reject the plausible wrong ones, without printing the answer. Ranges that any value passes
(``0 < x < 10``) and checks of shape or dtype alone do not qualify. For a value the learner must
derive, use :func:`expect_hash` (authors get the digest from :func:`answer_hash`) or compare with a
reference computed on other inputs. ``tests/wrong_answers/NN_topic.toml`` holds, for every graded
exercise, plausible wrong answers that the suite runs through the visible check and the grader.
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import sys
import types

__all__ = ["exercise", "expect", "expect_shape", "expect_close", "expect_equal", "expect_in_range",
           "answer_hash", "expect_hash", "by_hand", "UsedLibraryError", "expect_own_class"]


@contextlib.contextmanager
def exercise(number: int | str, what: str):
    """Run the checks of one exercise and print one line of feedback.

    First it makes sure no answer cell replaced a check helper (``expect = lambda *a, **k: None``, or a
    patch of this module): that is an ✗ here, and 0 points from the grader, which notices it the same way.
    """
    label = f"exercise {number}"
    try:
        replaced = _replaced_helpers(_caller_globals()) if _GUARD else []
        expect(not replaced, f"your code replaced the check helper{'s' * (len(replaced) > 1)} "
                             f"{', '.join(replaced)}: checks cannot be changed from an answer cell - delete "
                             "that line, restart the kernel and run the notebook again")
        yield
    except NotImplementedError:
        print(f"✗ {label}: not done yet - replace `raise NotImplementedError` with your code ({what})")
        raise
    except AssertionError as exc:
        print(f"✗ {label}: {exc or what}")
        raise
    except NameError as exc:
        print(f"✗ {label}: {exc} - write your answer in the cell above and run it first ({what})")
        raise
    except Exception as exc:
        print(f"✗ {label}: your code raised {type(exc).__name__}: {exc}")
        raise
    print(f"✓ {label}: {what}")


def expect(condition: bool, message: str) -> None:
    """Fail with ``message`` unless ``condition`` holds."""
    if not condition:
        raise AssertionError(message)


def _shape(x):
    shape = getattr(x, "shape", None)
    return tuple(shape) if shape is not None else None


def expect_shape(x, shape: tuple, name: str = "result") -> None:
    """Check an array/tensor's shape."""
    got = _shape(x)
    expect(got is not None, f"{name} should be an array or tensor, got {type(x).__name__}")
    expect(got == tuple(shape), f"{name} should have shape {tuple(shape)}, got {got}")


def expect_close(x, ref, name: str = "result", rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """Check values against a reference (numbers, arrays or tensors) within a tolerance."""
    import numpy as np

    def arr(v):
        v = v.detach().cpu().numpy() if hasattr(v, "detach") else v
        return np.asarray(v, dtype=np.float64)

    a, b = arr(x), arr(ref)
    expect(a.shape == b.shape, f"{name} should have shape {b.shape}, got {a.shape}")
    if not np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=False):
        diff = np.abs(a - b)
        where = np.unravel_index(int(np.nanargmax(diff)), diff.shape) if diff.ndim else ()
        raise AssertionError(f"{name} differs from the expected values: largest difference "
                             f"{float(np.nanmax(diff)):.4g} at index {tuple(int(i) for i in where)} "
                             f"(got {a[where]:.6g}, expected {b[where]:.6g})")


def expect_equal(x, ref, name: str = "result") -> None:
    """Check exact equality (ints, strings, tuples, lists)."""
    expect(x == ref, f"{name} should be {ref!r}, got {x!r}")


def expect_in_range(x: float, lo: float, hi: float, name: str = "result") -> None:
    """Check ``lo <= x <= hi``."""
    expect(isinstance(x, (int, float)) and not math.isnan(x), f"{name} should be a number, got {x!r}")
    expect(lo <= x <= hi, f"{name} should be between {lo} and {hi}, got {x:.4g}")


# ---- numbers the learner derives: compare hashes, so the check never shows the answer ----------------
def _canonical(value, digits: int) -> str:
    """A stable text form: ints and bools as written, floats to ``digits`` significant digits, recursively."""
    if hasattr(value, "tolist"):  # tensors, numpy scalars and arrays
        value = value.tolist()
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))  # 6.0 and 6 are the same answer
        return f"{value:.{digits}g}"
    if isinstance(value, (list, tuple)):
        return "(" + ",".join(_canonical(v, digits) for v in value) + ")"
    if isinstance(value, str):
        return repr(value.strip().lower())
    raise TypeError(f"cannot hash a {type(value).__name__}: give a number, a string, or a list/tuple of them")


def answer_hash(value, digits: int = 4, salt: str = "") -> str:
    """The digest :func:`expect_hash` compares with (authors: compute it from the solution once)."""
    text = f"{salt}|{_canonical(value, digits)}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def expect_hash(value, digest: str, name: str = "result", digits: int = 4, salt: str = "",
                hint: str = "") -> None:
    """Check a derived value against :func:`answer_hash` of the right one, without revealing it.

    Floats are compared to ``digits`` significant digits, so 2.302585 and math.log(10) agree and 2.3
    does not; ints exactly; lists and tuples element by element, in order.
    """
    try:
        got = answer_hash(value, digits, salt)
    except TypeError as exc:
        raise AssertionError(f"{name}: {exc}") from None
    expect(got == digest, f"{name} is not the expected value" + (f": {hint}" if hint else ""))


# ---- "write it by hand": the library version is refused while the learner's code runs ----------------
class UsedLibraryError(AssertionError):
    """The learner's code called a library function that the exercise asks them to write themselves."""


def _shown_name(f) -> str:
    """How a learner writes ``f``: F.conv2d, torchvision.ops.box_iou, torch.matmul ..."""
    name = f.__name__
    for prefix, module in (("F", "torch.nn.functional"), ("torchvision.ops", "torchvision.ops"), ("torch", "torch"),
                           ("torchvision.transforms.v2.functional", "torchvision.transforms.v2.functional"),
                           ("torchvision.transforms.functional", "torchvision.transforms.functional")):
        mod = sys.modules.get(module)
        if mod is not None and getattr(mod, name, None) is f:
            return f"{prefix}.{name}"
    return f"{getattr(f, '__module__', None) or 'torch'}.{name}"


def _banned_names(functions) -> dict[str, str]:
    """{name without leading underscores: how to show it} for functions or plain names."""
    names = {}
    for f in functions:
        if isinstance(f, str):
            names[f.lstrip("_")] = f
        elif getattr(f, "__name__", None):
            names[f.__name__.lstrip("_")] = _shown_name(f)
        else:
            raise TypeError(f"by_hand() takes functions or names, got {f!r}")
    return names


@contextlib.contextmanager
def by_hand(*functions, what: str = "this exercise"):
    """Refuse calls to ``functions`` (and their aliases) inside the block, with a friendly message.

    Catches every route to them: ``F.conv2d``, ``torch.conv2d``, ``nn.Conv2d`` modules (which call
    ``F.conv2d``) and Tensor methods of the same name, through torch's function-mode hook; plain Python
    functions (``torchvision.ops.box_iou``) are swapped out in every module that holds them, including
    the notebook's own namespace, for the duration of the block.
    """
    from torch.overrides import TorchFunctionMode

    banned = _banned_names(functions)

    def refuse(name: str):
        raise UsedLibraryError(f"{what} asks you to write this yourself, but your code called "
                               f"{banned[name]}: compute it from basic tensor operations instead")

    class _Refuse(TorchFunctionMode):
        def __torch_function__(self, func, types_, args=(), kwargs=None):
            name = (getattr(func, "__name__", "") or "").lstrip("_")
            if name in banned:
                refuse(name)
            return func(*args, **(kwargs or {}))

    swapped = []
    for f in functions:
        if not isinstance(f, types.FunctionType):
            continue  # builtins dispatch through the mode above
        name = f.__name__.lstrip("_")

        def stand_in(*args, _name=name, **kwargs):
            refuse(_name)

        top = (f.__module__ or "").split(".")[0]
        for mod_name, mod in list(sys.modules.items()):
            if mod is None or not (mod_name == "__main__" or mod_name.split(".")[0] == top):
                continue
            for attr, val in list(getattr(mod, "__dict__", {}).items()):
                if val is f:
                    swapped.append((mod, attr, val))
                    setattr(mod, attr, stand_in)
    try:
        with _Refuse():
            yield
    finally:
        for mod, attr, val in swapped:
            setattr(mod, attr, val)


def expect_own_class(cls, *references, what: str = "this exercise") -> None:
    """Refuse a class that subclasses one of the course's or the library's versions of it.

    ``class MyEncoderBlock(nn.TransformerEncoderLayer)`` inherits the whole answer; an exercise that asks
    for the class written by hand checks ``expect_own_class(MyEncoderBlock, nn.TransformerEncoderLayer,
    vit.EncoderBlock)`` (:func:`by_hand` refuses the functions).
    """
    expect(isinstance(cls, type), f"{what}: expected a class, got {type(cls).__name__}")
    for ref in references:
        expect(not issubclass(cls, ref), f"{what} asks you to write the class yourself, but {cls.__name__} "
                                         f"subclasses {ref.__module__}.{ref.__qualname__}: subclass nn.Module instead")


# ---- an answer cell cannot switch the checks off ------------------------------------------------------
_GUARD = True  # the audit's "hidden block alone" wraps the helpers on purpose and turns this off
_TAMPERED: list[str] = []  # what the grader's fresh copy of this module found replaced before it loaded


def _fingerprint(f):
    f = getattr(f, "__wrapped__", f)  # exercise and by_hand are context managers
    return (getattr(f, "__module__", None), getattr(f, "__qualname__", None), getattr(f, "__code__", None))


def _caller_globals() -> dict:
    """The namespace of the notebook cell that entered ``exercise`` (past contextlib's frames)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") in (__name__, "contextlib"):
        frame = frame.f_back
    return frame.f_globals if frame is not None else {}


def _replaced_helpers(namespace: dict, module=None) -> list[str]:
    """Helper names that ``namespace`` (or ``module``, default: this module as imported) binds to
    something other than this file's function, plus what the grader's fresh copy found (``_TAMPERED``)."""
    module = module if module is not None else sys.modules.get(__name__)
    bad = set(_TAMPERED)
    for name in _HELPERS:
        mine = _GENUINE[name]
        for where in (namespace, getattr(module, "__dict__", {})):
            if name in where and _fingerprint(where[name]) != mine:
                bad.add(name)
    return sorted(bad)


_HELPERS = [n for n in __all__ if isinstance(globals()[n], types.FunctionType)]
_GENUINE = {n: _fingerprint(globals()[n]) for n in _HELPERS}  # taken as this file loads, before any answer runs
