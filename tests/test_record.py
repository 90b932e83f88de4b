"""record(), reading metrics back from a notebook, and range checks."""
import nbformat
import pytest

from course_utils.record import MIME, check, expected_for, read_metrics, record, recorded, reset


def test_record_stores_plain_values(capsys):
    import torch

    reset()
    record("shape", torch.zeros(3, 4).shape)
    record("acc", torch.tensor(0.5))
    assert recorded() == {"shape": [3, 4], "acc": 0.5}
    assert "recorded acc = 0.5" in capsys.readouterr().out


def test_record_rejects_bad_names_and_values():
    with pytest.raises(ValueError, match="identifier"):
        record("val acc", 1.0)
    with pytest.raises(TypeError):
        record("obj", object())


def test_read_metrics_from_outputs():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("record(...)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        MIME: {"name": "acc", "value": 0.7, "profile": "smoke", "note": ""}, "text/plain": "x"})]
    nb.cells = [cell]
    assert read_metrics(nb) == ({"acc": 0.7}, "smoke")


def test_check_ranges():
    ranges = {"acc": {"min": 0.2, "max": 1.0}, "shape": {"equals": [3, 32, 32]}, "loss_drop": {"min": 0}}
    assert check({"acc": 0.5, "shape": [3, 32, 32], "loss_drop": 0.1}, ranges) == []
    problems = check({"acc": 0.1, "shape": [3, 28, 28]}, ranges)
    assert len(problems) == 3
    assert "acc = 0.1 outside [0.2, 1.0]" in problems[0]
    assert "loss_drop: not recorded" in problems[2]


def test_expected_for_falls_back_to_any():
    ranges = {"00_x": {"any": {"a": {"min": 0}}, "full": {"a": {"min": 1}}}}
    assert expected_for(ranges, "00_x", "full") == {"a": {"min": 1}}
    assert expected_for(ranges, "00_x", "smoke") == {"a": {"min": 0}}
    assert expected_for(ranges, "99_missing", "smoke") == {}


def test_load_ranges_from_folder(tmp_path):
    (tmp_path / "01_x.toml").write_text("[smoke]\nacc = { min = 0.2 }\n")
    (tmp_path / "00_y.toml").write_text("[any]\nshape = { equals = [3, 32, 32] }\n")
    from course_utils.record import load_ranges
    assert load_ranges(tmp_path) == {"00_y": {"any": {"shape": {"equals": [3, 32, 32]}}},
                                     "01_x": {"smoke": {"acc": {"min": 0.2}}}}
