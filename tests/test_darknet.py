"""course_utils.darknet against the YOLOv3 paper's Table 1 (as in the deck): layers, shapes, parameters."""
from __future__ import annotations

import torch
from torch import nn

from course_utils.darknet import DARKNET53_STAGES, DarkResidual, count_layers, darknet53

# The table's "Output" column for a 256x256 input, after the stem and after each stage.
TABLE_OUTPUT = {"stem": 256, "stage1": 128, "stage2": 64, "stage3": 32, "stage4": 16, "stage5": 8}


def _table_params(num_classes: int = 1000) -> int:
    """Parameters counted from the table by hand: conv k*k*c_in*c_out (no bias) + BatchNorm 2*c_out, FC W+b."""
    conv = lambda c_in, c_out, k: k * k * c_in * c_out + 2 * c_out
    total, c = conv(3, 32, 3), 32
    for filters, units in DARKNET53_STAGES:
        total += conv(c, filters, 3) + units * (conv(filters, filters // 2, 1) + conv(filters // 2, filters, 3))
        c = filters
    return total + c * num_classes + num_classes


def test_stages_are_the_tables_rows():
    assert DARKNET53_STAGES == ((64, 1), (128, 2), (256, 8), (512, 8), (1024, 4))


def test_53_weight_layers_52_of_them_convolutions():
    with torch.device("meta"):
        model = darknet53()
    assert count_layers(model) == {"conv": 52, "linear": 1}


def test_output_sizes_follow_the_table():
    with torch.device("meta"):
        model = darknet53()
        x = torch.empty(2, 3, 256, 256)
        for name, stage in model.named_children():
            x = stage(x)
            if name in TABLE_OUTPUT:
                assert x.shape[-2:] == (TABLE_OUTPUT[name],) * 2, name
    assert x.shape == (2, 1000)


def test_parameter_count_matches_a_count_from_the_table():
    with torch.device("meta"):
        model = darknet53()
    assert sum(p.numel() for p in model.parameters()) == _table_params() == 41609928


def test_residual_unit_adds_its_input_and_runs_on_real_data():
    unit = DarkResidual(8)
    nn.init.zeros_(unit.expand[1].weight)  # BN scale 0 and shift 0: the branch outputs LeakyReLU(0) = 0
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(unit(x), x)
    small = darknet53(num_classes=10, stages=((8, 1), (16, 2)))
    assert small(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert count_layers(small) == {"conv": 1 + 2 + 2 * 3, "linear": 1}
