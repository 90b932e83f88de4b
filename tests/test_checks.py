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


def test_expect_hash_accepts_the_value_and_rejects_near_misses_without_showing_it():
    import math

    from course_utils.checks import answer_hash, expect_hash

    digest = answer_hash(math.log(10))
    expect_hash(2.302585, digest)                      # the same value to 4 significant digits
    expect_hash(torch.tensor(math.log(10)), digest)    # a 0-dim tensor is a number too
    for wrong in (2.3, 2.31, 10, math.log(9)):
        with pytest.raises(AssertionError) as info:
            expect_hash(wrong, digest, name="loss")
        assert "2.30" not in str(info.value) and str(wrong) not in str(info.value)
    assert answer_hash(6.0) == answer_hash(6) and answer_hash([1, 2]) == answer_hash((1, 2))
    assert answer_hash(torch.tensor([1, 2])) == answer_hash([1, 2]) != answer_hash([2, 1])
    assert answer_hash(7, salt="ex1") != answer_hash(7, salt="ex2")
    with pytest.raises(AssertionError, match="cannot hash a dict"):
        expect_hash({"a": 1}, digest, name="answer")


def test_by_hand_refuses_the_library_function_by_every_route(capsys):
    import torch.nn.functional as F
    import torchvision
    from torch import nn

    from course_utils.checks import UsedLibraryError, by_hand

    x, w = torch.randn(1, 3, 8, 8), torch.randn(4, 3, 3, 3)
    routes = {"F.conv2d": lambda: F.conv2d(x, w), "torch.conv2d": lambda: torch.conv2d(x, w),
              "nn.Conv2d": lambda: nn.Conv2d(3, 4, 3)(x)}
    for route, call in routes.items():
        with pytest.raises(UsedLibraryError, match="called F.conv2d"):
            with by_hand(F.conv2d):
                call()
    with by_hand(F.conv2d):  # a hand-written convolution passes
        cols = F.unfold(x, 3)  # (1, 27, 36)
        out = (w.view(4, -1) @ cols).view(1, 4, 6, 6)
    torch.testing.assert_close(out, F.conv2d(x, w), rtol=1e-4, atol=1e-4)
    with pytest.raises(UsedLibraryError):
        with by_hand(F.cross_entropy):
            nn.CrossEntropyLoss()(torch.randn(2, 3), torch.tensor([0, 1]))
    from torchvision.ops import box_iou  # a Python function, imported by name before the block
    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    original = torchvision.ops.box_iou
    with pytest.raises(UsedLibraryError, match="torchvision.ops.box_iou"):
        with by_hand(torchvision.ops.box_iou):
            assert torchvision.ops.box_iou is not original and torchvision.ops.boxes.box_iou is not original
            torchvision.ops.box_iou(boxes, boxes)
    assert torchvision.ops.box_iou is original and torchvision.ops.boxes.box_iou is original  # restored afterwards
    assert box_iou(boxes, boxes).item() == 1.0
    with pytest.raises(UsedLibraryError):
        with exercise(5, "conv by hand"):
            with by_hand(F.conv2d, what="exercise 5"):
                F.conv2d(x, w)
    assert "✗ exercise 5: exercise 5 asks you to write this yourself, but your code called F.conv2d" in capsys.readouterr().out


def test_expect_own_class_refuses_subclasses_of_the_references():
    from torch import nn

    from course_utils.checks import expect_own_class

    class Own(nn.Module):
        pass

    class Borrowed(nn.TransformerEncoderLayer):
        pass

    expect_own_class(Own, nn.TransformerEncoderLayer, what="exercise 3")
    with pytest.raises(AssertionError, match="Borrowed subclasses torch.nn.modules.transformer.TransformerEncoderLayer"):
        expect_own_class(Borrowed, nn.Linear, nn.TransformerEncoderLayer, what="exercise 3")
    with pytest.raises(AssertionError, match="expected a class"):
        expect_own_class(Own(), nn.Linear)


def test_salt_and_digits_change_the_digest():
    from course_utils.checks import answer_hash, expect_hash

    assert answer_hash(197, salt="14-ex5") != answer_hash(197, salt="14-ex4") != answer_hash(197)
    assert answer_hash(2.2540378, 6, "s") == answer_hash(2.25403779, 6, "s") != answer_hash(2.25411, 6, "s")
    assert answer_hash(2.2540378, 4, "s") == answer_hash(2.25411, 4, "s")  # 4 digits cannot tell these apart
    expect_hash(55, answer_hash(55, 6, "04-ex4"), salt="04-ex4", digits=6)
    with pytest.raises(AssertionError, match="n is not the expected value"):
        expect_hash(55, answer_hash(55, 6, "04-ex4"), "n", salt="04-ex3", digits=6)


def test_every_lesson_hash_is_salted_per_exercise():
    """CONTRIBUTING's rule for expect_hash: salt="NN-exK-name" (the lesson and the exercise), so one digest
    never serves two exercises; profile-dependent digests (cfg.pick, lesson 08) are salted too."""
    import re
    from pathlib import Path

    import nbformat

    calls = 0
    for path in sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id", "")
            for call in re.findall(r"expect_hash\((.*?)\)\n", cell.source, re.S):
                calls += 1
                salt = re.search(r'salt="([^"]+)"', call)
                assert salt, f"{path.stem} {gid}: expect_hash without a salt: {call[:80]}"
                assert salt[1] == f"{path.stem[:2]}-{gid.removesuffix('-test')}", f"{path.stem} {gid}: salt {salt[1]!r}"
    assert calls >= 20


def test_a_replaced_helper_is_an_x_in_the_learners_kernel(capsys):
    """``expect = lambda *a, **k: None`` in an answer cell, or a patch of the module: ✗, with what to do."""
    import course_utils.checks as checks

    ns = {"__name__": "__main__"}
    exec("from course_utils.checks import exercise, expect, expect_hash", ns)
    exec("with exercise(3, 'fine'):\n    expect(True, 'x')", ns)
    assert "✓ exercise 3" in capsys.readouterr().out
    exec("expect = expect_hash = lambda *a, **k: None", ns)  # the answer cell
    with pytest.raises(AssertionError, match="replaced the check helpers expect, expect_hash"):
        exec("with exercise(3, 'fine'):\n    expect(False, 'the real check')", ns)
    assert "✗ exercise 3: your code replaced" in capsys.readouterr().out
    original = checks.expect_close
    try:
        checks.expect_close = lambda *a, **k: None  # a patch of the module, then a fresh import
        ns = {"__name__": "__main__"}
        with pytest.raises(AssertionError, match="expect_close"):
            exec("from course_utils.checks import *\nwith exercise(4, 'x'):\n    expect_close(1, 2)", ns)
    finally:
        checks.expect_close = original


def test_the_graders_fresh_helpers_notice_a_replaced_helper_too(capsys):
    """The grader's fresh line rebinds the helpers, but first notes the replaced ones: ✗ and 0 there too."""
    from course_utils.machinery.grading.fresh import disarmed_outside_hidden, with_fresh_checks

    cell = "with exercise(2, 'x'):\n    expect(True, 'fine')\n"
    ns = {"__name__": "__main__"}
    exec("from course_utils.checks import *", ns)
    exec(with_fresh_checks(cell), ns)  # nothing replaced: ✓
    assert "✓ exercise 2" in capsys.readouterr().out
    exec("expect = lambda *a, **k: None", ns)
    with pytest.raises(AssertionError, match="replaced the check helper expect"):
        exec(with_fresh_checks(cell), ns)
    exec(with_fresh_checks(cell), ns)  # the fresh line rebound it: the next exercise is graded normally
    ns = {"__name__": "__main__"}
    exec("from course_utils.checks import *", ns)
    exec(disarmed_outside_hidden(cell), ns)  # the audit's own wrapping of the helpers is not tampering
    assert "✓ exercise 2" in capsys.readouterr().out.splitlines()[-1]
