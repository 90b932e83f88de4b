"""Friendly checks for exercise test cells: ``✓ exercise 2: ...`` or ``✗ exercise 2: ... expected ...``.

A test cell reads::

    with exercise(2, "conv2d matches torch"):
        expect_shape(out, (1, 8, 30, 30))
        expect_close(out, F.conv2d(x, w))

Inside the block a failed expectation raises ``AssertionError`` with a message that says what was
expected and what came instead; an unsolved exercise (``NotImplementedError``) says so plainly. The
error still propagates, so nbgrader scores the cell as failed. Needs nothing but this package.
"""
from __future__ import annotations

import contextlib
import math

__all__ = ["exercise", "expect", "expect_shape", "expect_close", "expect_equal", "expect_in_range"]


@contextlib.contextmanager
def exercise(number: int | str, what: str):
    """Run the checks of one exercise and print one line of feedback."""
    label = f"exercise {number}"
    try:
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
