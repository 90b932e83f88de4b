"""course_utils.transfer: checkpoint round trip, heads, freezing, parameter groups, features, neighbours."""
from __future__ import annotations

import os

import pytest
import torch
import torchvision
from torch import nn

from course_utils import transfer
from course_utils.arch import simple_cnn

BACKBONE = {"channels": [8, 16, 32], "batch_norm": True, "global_pool": True}  # conv-BN-ReLU-pool ×3


def bn_cnn(num_classes: int) -> nn.Sequential:
    return simple_cnn(num_classes=num_classes, **BACKBONE)


def test_save_and_load_backbone_round_trip():
    torch.manual_seed(0)
    model = bn_cnn(5)
    path = transfer.save_weights(model, "test_round_trip", {"num_classes": 5, **BACKBONE, "epochs": 3})
    assert path.is_file() and path.suffix == ".pth"
    assert path.is_relative_to(transfer.use_weights_cache())
    loaded = transfer.load_backbone("test_round_trip")
    x = torch.randn(2, 3, 16, 16)
    model.eval(), loaded.eval()
    torch.testing.assert_close(loaded(x), model(x))
    # the file holds a plain state_dict, like torchvision's weight files
    state = torch.load(path, weights_only=True)
    assert set(state) == set(model.state_dict())


def test_load_backbone_builds_the_simple_cnn_its_config_describes():
    torch.manual_seed(0)
    plain = simple_cnn((4, 8), num_classes=3, in_size=16)  # lesson 05's kind: no BN, flattened features
    transfer.save_weights(plain, "test_plain_cnn", {"channels": [4, 8], "num_classes": 3, "in_size": 16})
    loaded = transfer.load_backbone("test_plain_cnn")
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(loaded.eval()(x), plain.eval()(x))


def test_load_backbone_missing_checkpoint_says_what_to_do():
    with pytest.raises(FileNotFoundError, match="save_weights"):
        transfer.load_backbone("no_such_checkpoint")


def test_replace_head_simple_cnn_and_resnet():
    m = bn_cnn(10)
    head = transfer.replace_head(m, 3)
    assert isinstance(head, nn.Linear) and head.out_features == 3 and m.classifier[-1] is head
    assert m(torch.randn(2, 3, 16, 16)).shape == (2, 3)
    r = torchvision.models.resnet18(num_classes=10)
    transfer.replace_head(r, None)
    assert isinstance(r.fc, nn.Identity)
    assert r.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 512)
    with pytest.raises(ValueError, match="nn.Linear"):
        transfer.replace_head(nn.Conv2d(3, 3, 1), 2)


def test_freeze_and_count_trainable():
    m = bn_cnn(4)
    total = sum(p.numel() for p in m.parameters())
    assert transfer.count_trainable(m) == total
    transfer.freeze(m)
    assert transfer.count_trainable(m) == 0
    head = transfer.replace_head(m, 4)
    assert transfer.count_trainable(m) == 32 * 4 + 4  # 32 features -> 4 classes
    transfer.freeze(m, False)
    assert transfer.count_trainable(m) == total
    assert head.weight.requires_grad


def test_param_groups_cover_each_parameter_once_with_its_lr():
    m = bn_cnn(4)
    groups = transfer.param_groups(m, m.classifier, lr=0.1, backbone_lr=0.01, weight_decay=1e-4)
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in m.parameters())
    head_ids = {id(p) for p in m.classifier.parameters()}
    for g in groups:
        in_head = {id(p) in head_ids for p in g["params"]}
        assert len(in_head) == 1  # a group is all head or all backbone
        assert g["lr"] == (0.1 if in_head.pop() else 0.01)
        assert g["weight_decay"] == (1e-4 if all(p.ndim >= 2 for p in g["params"]) else 0.0)
    opt = torch.optim.SGD(groups, lr=1.0)
    assert sorted({g["lr"] for g in opt.param_groups}) == [0.01, 0.1]
    transfer.freeze(m)  # frozen parameters are left out
    assert transfer.param_groups(m, m.classifier, 0.1, 0.01) == []


def test_extract_features_matches_manual_forward_in_eval_mode():
    torch.manual_seed(0)
    m = bn_cnn(4)
    transfer.replace_head(m, None)
    m.train()
    images = torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    feats = transfer.extract_features(m, images, mean, std, batch_size=2)
    assert m.training  # mode restored
    x = (images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = m.eval()(x)
    torch.testing.assert_close(feats, ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="uint8"):
        transfer.extract_features(m, images.float(), mean, std)


def test_nearest_neighbours_against_brute_force():
    g = torch.Generator().manual_seed(0)
    q, bank = torch.randn(6, 10, generator=g), torch.randn(20, 10, generator=g)
    l2 = transfer.nearest_neighbours(q, bank, k=3, metric="l2")
    ref_l2 = torch.stack([((bank - v) ** 2).sum(1).argsort()[:3] for v in q])
    assert torch.equal(l2, ref_l2)
    cos = transfer.nearest_neighbours(q, bank, k=3, metric="cosine")
    sims = torch.stack([torch.nn.functional.cosine_similarity(bank, v[None], dim=1) for v in q])
    assert torch.equal(cos, sims.argsort(dim=1, descending=True)[:, :3])
    # scaling a bank vector changes L2 distances but not cosine similarity
    assert torch.equal(transfer.nearest_neighbours(q, bank * 7, k=3), cos)
    with pytest.raises(ValueError, match="metric"):
        transfer.nearest_neighbours(q, bank, metric="l7")


def test_to_tensor_set_resizes_and_crops():
    from PIL import Image

    data = [(Image.new("RGB", (40, 20), (255, 0, 0)), 1), (torch.zeros(3, 30, 50, dtype=torch.uint8), 0),
            (Image.new("RGBA", (16, 16), (0, 0, 255, 128)), 2)]
    images, labels = transfer.to_tensor_set(data, 8, indices=[0, 1, 2])
    assert images.shape == (3, 3, 8, 8) and images.dtype == torch.uint8
    assert labels.tolist() == [1, 0, 2]
    assert images[0, 0].float().mean() == 255 and images[0, 1:].max() == 0  # still pure red
    assert images[2, 2].float().mean() == 255  # alpha dropped, blue kept


def test_torchvision_backbone_goes_through_weights_get_state_dict(monkeypatch):
    """No download here: stand in for the cached ImageNet file and check the path it takes."""
    from torchvision.models import ResNet18_Weights

    torch.manual_seed(0)
    fake = torchvision.models.resnet18().state_dict()
    calls = []

    def get_state_dict(self, *args, **kwargs):
        calls.append((self, os.environ.get("TORCH_HOME")))
        return fake

    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.setattr(ResNet18_Weights, "get_state_dict", get_state_dict)
    model = transfer.load_backbone("resnet18")
    assert calls == [(ResNet18_Weights.DEFAULT, str(transfer.use_weights_cache() / "torch"))]
    torch.testing.assert_close(model.state_dict()["conv1.weight"], fake["conv1.weight"])


class _Rehearsal:
    rehearsal = True


def _refuse_downloads(monkeypatch):
    from torchvision.models._api import WeightsEnum

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"{self} was fetched in a rehearsal")

    monkeypatch.setattr(WeightsEnum, "get_state_dict", refuse)


@pytest.mark.parametrize("name", ["resnet18", "deeplabv3_mobilenet_v3_large", "fasterrcnn_mobilenet_v3_large_fpn"])
def test_pretrained_in_a_rehearsal_is_the_real_architecture_with_random_weights(monkeypatch, capsys, name):
    from torchvision.models._api import WeightsEnum

    _refuse_downloads(monkeypatch)
    transfer._noted.clear()
    torch.manual_seed(0)
    model = transfer.pretrained(name, _Rehearsal())
    assert f"REHEARSAL: {name} built with random weights" in capsys.readouterr().out
    torch.manual_seed(1)
    other = transfer.pretrained(name, _Rehearsal())
    first = next(k for k, v in model.state_dict().items() if v.is_floating_point() and v.ndim == 4)
    assert not torch.equal(model.state_dict()[first], other.state_dict()[first])  # random, not a loaded file
    assert capsys.readouterr().out == ""  # the note is printed once per model
    # the real path (weights file present): its strict load_state_dict takes the rehearsal model's state,
    # so both are one architecture - heads sized from the weights' meta (1000 ImageNet classes, 91 COCO ids,
    # 21 VOC classes), aux heads on, frozen BatchNorm in pretrained detectors ...
    monkeypatch.setattr(WeightsEnum, "get_state_dict", lambda self, *a, **k: model.state_dict())
    monkeypatch.delenv("COURSE_DATA_SOURCE", raising=False)
    real = transfer.pretrained(name)
    torch.testing.assert_close(real.state_dict()[first], model.state_dict()[first])


def test_rehearsal_patch_is_undone(monkeypatch):
    from torchvision.models._api import WeightsEnum

    before = (WeightsEnum.get_state_dict, nn.Module.load_state_dict)
    _refuse_downloads(monkeypatch)
    patched = WeightsEnum.get_state_dict
    transfer.pretrained("resnet18", _Rehearsal())
    assert (WeightsEnum.get_state_dict, nn.Module.load_state_dict) == (patched, before[1])
    a, b = bn_cnn(3), bn_cnn(3)
    with pytest.raises(RuntimeError):
        a.load_state_dict({"nope": torch.zeros(1)})  # strict loading works as before
    a.load_state_dict(b.state_dict())


def test_load_backbone_takes_the_rehearsal_from_cfg_or_environment(monkeypatch):
    _refuse_downloads(monkeypatch)
    assert isinstance(transfer.load_backbone("resnet18", cfg=_Rehearsal()), torchvision.models.ResNet)
    monkeypatch.setenv("COURSE_DATA_SOURCE", "shapes")  # `course run --data shapes`, no cfg passed
    assert isinstance(transfer.load_backbone("resnet18"), torchvision.models.ResNet)
    assert transfer.random_weights() and not transfer.random_weights(type("C", (), {"rehearsal": False})())


def test_pretrained_outside_a_rehearsal_loads_the_weights(monkeypatch):
    from torchvision.models import ResNet18_Weights

    monkeypatch.delenv("COURSE_DATA_SOURCE", raising=False)
    torch.manual_seed(0)
    fake = torchvision.models.resnet18().state_dict()
    monkeypatch.setattr(ResNet18_Weights, "get_state_dict", lambda self, *a, **k: fake)
    model = transfer.pretrained("resnet18")
    torch.testing.assert_close(model.state_dict()["fc.weight"], fake["fc.weight"])


def test_open_clip_rehearsal_builds_offline(monkeypatch, capsys):
    import open_clip

    monkeypatch.setattr("open_clip.factory.download_pretrained", lambda *a, **k: (_ for _ in ()).throw(
        AssertionError("downloaded in a rehearsal")))
    model = transfer.pretrained("open_clip:RN50/openai", _Rehearsal())
    assert isinstance(model, open_clip.CLIP) and "REHEARSAL: open_clip:RN50/openai" in capsys.readouterr().out
    # the openai tag was trained with QuickGELU: the rehearsal builds that variant too
    assert any(type(m).__name__ == "QuickGELU" for m in model.modules())
