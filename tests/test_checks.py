"""Exercise feedback: a passing check prints ✓, a failing one prints ✗ with a useful message and fails."""
import numpy as np
import pytest
import torch

from course_utils.checks import exercise, expect_close, expect_equal, expect_in_range, expect_shape


def test_pass_prints_tick(capsys):
    with exercise(1, "shapes match"):
        expect_shape(torch.zeros(1, 8, 30, 30), (1, 8, 30, 30))
    assert capsys.readouterr().out.strip() == "✓ exercise 1: shapes match"


def test_wrong_shape_message(capsys):
    with pytest.raises(AssertionError):
        with exercise(3, "conv2d"):
            expect_shape(torch.zeros(1, 8, 28, 28), (1, 8, 30, 30))
    assert "✗ exercise 3: result should have shape (1, 8, 30, 30), got (1, 8, 28, 28)" in capsys.readouterr().out


def test_not_implemented_says_not_done(capsys):
    def todo():
        raise NotImplementedError
    with pytest.raises(NotImplementedError):
        with exercise(2, "softmax"):
            todo()
    assert "not done yet" in capsys.readouterr().out


def test_learner_crash_is_reported(capsys):
    with pytest.raises(ZeroDivisionError):
        with exercise(4, "x"):
            1 / 0
    assert "your code raised ZeroDivisionError" in capsys.readouterr().out


def test_expect_close_points_at_the_difference():
    a = np.zeros((2, 3))
    b = a.copy()
    b[1, 2] = 1.0
    with pytest.raises(AssertionError, match=r"largest difference 1 at index \(1, 2\)"):
        expect_close(a, b)
    expect_close(torch.ones(2), np.ones(2))


def test_equal_and_range():
    expect_equal(75, 75)
    with pytest.raises(AssertionError, match="should be 76, got 75"):
        expect_equal(75, 76)
    with pytest.raises(AssertionError, match="between 0 and 1"):
        expect_in_range(1.5, 0, 1)
    with pytest.raises(AssertionError, match="should be a number"):
        expect_in_range(float("nan"), 0, 1)


def test_missing_answer_name_says_run_the_cell_above(capsys):
    with pytest.raises(NameError):
        with exercise(3, "cost"):
            n_ops_never_defined  # noqa: F821
    assert "name 'n_ops_never_defined' is not defined - write your answer in the cell above" in capsys.readouterr().out
