"""course_utils.arch against references: torch's own conv shapes, torchvision's VGGs, gradients, hand formulas."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from course_utils import arch


@pytest.mark.parametrize("size,k,s,p,d", [(32, 5, 1, 0, 1), (32, 3, 1, 1, 1), (7, 3, 2, 1, 1), (224, 11, 4, 2, 1),
                                          (10, 3, 3, 0, 1), (15, 3, 1, 0, 2), (6, 2, 2, 0, 1)])
def test_conv_output_size_matches_torch(size, k, s, p, d):
    out = F.conv2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, k, k), stride=s, padding=p, dilation=d)
    assert arch.conv_output_size(size, k, s, p, d) == out.shape[-1]


def test_conv_output_size_rejects_too_large_kernel():
    with pytest.raises(ValueError, match="larger than the padded input"):
        arch.conv_output_size(3, 5)


def _empirical_rf(model: nn.Module, size: int = 64) -> int:
    """Width of the input region that the centre output unit depends on (nonzero gradient)."""
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    y = model(x)
    y[0, 0, y.shape[2] // 2, y.shape[3] // 2].backward()
    cols = torch.nonzero(x.grad[0, 0].abs().sum(0)).flatten()
    return int(cols.max() - cols.min() + 1)


def _ones_conv(k: int, stride: int = 1) -> nn.Conv2d:
    c = nn.Conv2d(1, 1, k, stride=stride, bias=False)
    nn.init.ones_(c.weight)
    return c


def test_receptive_field_hand_values():
    assert arch.receptive_field([(3, 1)] * 3) == [3, 5, 7]
    assert arch.receptive_field([(3, 1), (2, 2), (3, 1)]) == [3, 4, 8]
    assert arch.receptive_field([(11, 4), (3, 2), (5, 1)]) == [11, 19, 51]


@pytest.mark.parametrize("model", [
    nn.Sequential(_ones_conv(3), _ones_conv(3), _ones_conv(3)),
    nn.Sequential(_ones_conv(3), nn.AvgPool2d(2), _ones_conv(3), nn.AvgPool2d(2), _ones_conv(3)),
    nn.Sequential(_ones_conv(5, stride=2), _ones_conv(3)),
])
def test_receptive_field_matches_gradient_extent(model):
    specs = arch.layer_specs(model)
    assert arch.receptive_field([(k, s) for _, k, s in specs])[-1] == _empirical_rf(model)


def test_count_params_and_per_layer():
    m = nn.Sequential(nn.Conv2d(3, 4, 5), nn.ReLU(), nn.Linear(10, 2))
    assert arch.count_params(m) == 4 * (3 * 5 * 5 + 1) + (10 * 2 + 2)
    assert arch.params_by_layer(m) == [("0", "Conv2d", 304), ("2", "Linear", 22)]
    m[0].weight.requires_grad_(False)
    assert arch.count_params(m, trainable_only=True) == 4 + 22


@pytest.mark.parametrize("c,w", [(8, 16), (16, 10)])
def test_count_flops_matches_deck_formulas(c, w):
    one5 = nn.Conv2d(c, c, 5, padding=2)
    two3 = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1))
    x = torch.randn(1, c, w, w)
    assert arch.count_flops(one5, x) == 50 * c * c * w * w
    assert arch.count_flops(two3, x) == 36 * c * c * w * w
    assert arch.count_flops(nn.Linear(7, 3), torch.randn(5, 7)) == 2 * 5 * 7 * 3


def test_activation_sizes_lists_outputs():
    m = nn.Sequential(nn.Conv2d(3, 4, 5), nn.ReLU(), nn.MaxPool2d(2))
    rows = arch.activation_sizes(m, torch.randn(2, 3, 32, 32))
    assert rows == [("0", (2, 4, 28, 28), 2 * 4 * 28 * 28), ("1", (2, 4, 28, 28), 6272), ("2", (2, 4, 14, 14), 1568)]
    assert not m[0]._forward_hooks  # hooks removed


@pytest.mark.parametrize("config,name", [("A", "vgg11"), ("B", "vgg13"), ("D", "vgg16"), ("E", "vgg19")])
@pytest.mark.parametrize("bn", [False, True])
def test_vgg_param_counts_equal_torchvision(config, name, bn):
    with torch.device("meta"):  # counting needs shapes only: no 500 MB of random weights
        ref = getattr(torchvision.models, name + ("_bn" if bn else ""))(weights=None)
        ours = arch.vgg(config, batch_norm=bn)
    assert arch.count_params(ours) == arch.count_params(ref)
    # BatchNorm adds a scale and a shift per conv channel: too few to change the paper's millions
    assert round(arch.count_params(ours) / 1e6) == arch.VGG_PAPER_PARAMS[config]
    if bn:
        with torch.device("meta"):
            plain = arch.count_params(arch.vgg(config))
        channels = sum(c for c in arch.VGG_CONFIGS[config] if isinstance(c, int))
        assert arch.count_params(ours) - plain == 2 * channels


def test_vgg_16_is_138_357_544_and_configs_match_paper():
    with torch.device("meta"):
        counts = {c: arch.count_params(arch.vgg(c)) for c in arch.VGG_CONFIGS}
    assert counts["D"] == 138_357_544
    assert counts["A"] == counts["A-LRN"]  # LRN has no parameters
    for c, n in counts.items():
        assert round(n / 1e6) == arch.VGG_PAPER_PARAMS[c], c


@pytest.mark.parametrize("bn", [False, True])
def test_vgg_state_dict_matches_torchvision(bn):
    with torch.device("meta"):
        ref = torchvision.models.vgg16_bn(weights=None) if bn else torchvision.models.vgg16(weights=None)
        ours = arch.vgg("D", batch_norm=bn)
    shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert shapes(ours) == shapes(ref)  # same names and shapes: pretrained weights load as they are


def test_vgg_features_load_torchvision_weights_and_agree():
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    ref = make_layers(cfgs["A"]).eval()
    ours = arch.vgg_features("A").eval()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x))


def test_vgg_small_variant_and_errors():
    m = arch.vgg([8, "M", 16, "M"], num_classes=5, hidden=None, pool_size=1)
    assert m(torch.randn(2, 3, 16, 16)).shape == (2, 5)
    assert arch.count_params(m) == (3 * 9 * 8 + 8) + (8 * 9 * 16 + 16) + (16 * 5 + 5)
    c = arch.vgg_features("C")
    assert sum(isinstance(l, nn.Conv2d) and l.kernel_size == (1, 1) for l in c) == 3
    assert any(isinstance(l, nn.LocalResponseNorm) for l in arch.vgg_features("A-LRN"))
    with pytest.raises(ValueError, match="unknown VGG config"):
        arch.vgg_features("F")


def test_simple_cnn_shapes_params_and_variants():
    m = arch.simple_cnn((4, 8), num_classes=3, in_size=16)
    x = torch.randn(2, 3, 16, 16)
    assert m(x).shape == (2, 3)
    assert m.features(x).shape == (2, 8, 4, 4)
    assert arch.count_params(m) == (3 * 9 * 4 + 4) + (4 * 9 * 8 + 8) + (8 * 16 * 3 + 3)
    bn = arch.simple_cnn((4, 8), num_classes=3, batch_norm=True, hidden=6, global_pool=True)
    assert sum(isinstance(l, nn.BatchNorm2d) for l in bn.features) == 2
    assert bn.features[0].bias is None
    assert bn(torch.randn(2, 3, 20, 20)).shape == (2, 3)  # global pooling: any input size
    with pytest.raises(ValueError, match="shrink"):
        arch.simple_cnn((4, 4, 4, 4, 4, 4), in_size=32)


def test_cifar_resnet18_is_lesson_07s_recipe_model():
    import json

    from course_utils.arch import cifar_resnet18
    from course_utils.machinery.nbtools import ROOT

    model = cifar_resnet18(10)
    assert arch.count_params(model) == 11_173_962
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1) and isinstance(model.maxpool, nn.Identity)
    acts = {}
    model.layer1.register_forward_hook(lambda m, i, o: acts.update(layer1=o.shape))  # returns None: output kept
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10) and acts["layer1"] == (2, 64, 32, 32)
    # the lesson defines the same model in front of the learner: build its definition and compare
    nb = json.loads((ROOT / "notebooks" / "07_resnet.ipynb").read_text())
    src = next("".join(c["source"]) for c in nb["cells"] if "def cifar_resnet18" in "".join(c["source"]))
    namespace = {"torchvision": __import__("torchvision"), "nn": nn}
    exec(src[src.index("def cifar_resnet18"):src.index("\n\n", src.index("def cifar_resnet18"))], namespace)
    lesson = namespace["cifar_resnet18"](10)
    assert [(k, v.shape) for k, v in lesson.state_dict().items()] == [(k, v.shape) for k, v in model.state_dict().items()]
    assert repr(lesson) == repr(model)
