"""Transfer learning helpers: load a pretrained backbone, freeze it, learning rates per layer group,
feature extraction and nearest neighbours in feature space.

Pretrained weights all go through one path: build the architecture, read a state_dict from the
weights cache (``course_utils.paths.weights_dir()``, also used as ``TORCH_HOME`` for torchvision), and
``load_state_dict`` it. Real ImageNet weights (``"resnet18"``) and the course's own checkpoints (a
small CNN pretrained on half the shapes world, saved with :func:`save_weights`) differ only in where
the state_dict comes from. The course's checkpoints are :func:`course_utils.arch.simple_cnn` models: the
JSON config saved beside one holds simple_cnn's keyword arguments (``channels``, ``batch_norm``,
``global_pool`` ..., ``num_classes``), from which the architecture is built again. Images are uint8
NCHW in, features float (N, D) out.

Every downloadable pretrained model goes through :func:`pretrained` (torchvision, open_clip, timm). In a
rehearsal (``cfg.rehearsal``: light/full on the shapes world, see ``course_utils.data.rehearsal``) it
builds the same architecture, through the same builder, with random weights and prints a note saying so.
"""
from __future__ import annotations

import inspect
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torch import nn

from .arch import count_params, simple_cnn

__all__ = ["use_weights_cache", "weights_path", "save_weights", "pretrained", "random_weights", "load_backbone",
           "replace_head", "freeze", "count_trainable", "param_groups", "extract_features", "nearest_neighbours",
           "to_tensor_set"]

_TORCHVISION = ("resnet18", "resnet34", "resnet50")


def use_weights_cache() -> Path:
    """Point TORCH_HOME/HF_HOME into the course weights cache (see paths.use_weights_dir); return its root."""
    from .paths import use_weights_dir, weights_dir

    use_weights_dir()
    return weights_dir()


def weights_path(name: str) -> Path:
    """Where the course keeps its own checkpoint ``name``: <weights cache>/course/<name>.pth."""
    return use_weights_cache() / "course" / f"{name}.pth"


def save_weights(model: nn.Module, name: str, config: dict | None = None) -> Path:
    """``torch.save`` the state_dict (the same file format as torchvision's weights) plus a JSON config beside it.

    For a :func:`~course_utils.arch.simple_cnn`, put its keyword arguments in ``config`` so that
    :func:`load_backbone` can build the same architecture again.
    """
    path = weights_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)  # never leave a half-written checkpoint under the final name
    path.with_suffix(".json").write_text(json.dumps(config or {}, indent=1, sort_keys=True))
    return path


def random_weights(cfg=None) -> bool:
    """True when pretrained weights must not be fetched: a rehearsal (``cfg.rehearsal``, or without a cfg
    ``$COURSE_DATA_SOURCE=shapes``, which ``course run --data shapes`` sets for every lesson)."""
    if cfg is not None:
        return bool(getattr(cfg, "rehearsal", False))
    from .data.source import requested_source

    return requested_source() == "shapes"


class _NoWeights(dict):
    """Stands for a downloaded state_dict in a rehearsal: ``load_state_dict`` of it keeps the random init."""


@contextmanager
def _no_download():
    """Inside: torchvision's ``weights.get_state_dict()`` returns a :class:`_NoWeights` and loading it is a
    no-op, so a builder called with ``weights=...`` runs its real code (heads sized from the weights' meta,
    aux heads, eps fixes) and only the weights file is missing."""
    from torch.nn.modules.module import _IncompatibleKeys
    from torchvision.models._api import WeightsEnum

    get, load = WeightsEnum.get_state_dict, nn.Module.load_state_dict

    def fake_get(self, *args, **kwargs):
        return _NoWeights()

    def fake_load(self, state_dict, *args, **kwargs):
        return _IncompatibleKeys([], []) if isinstance(state_dict, _NoWeights) else load(self, state_dict, *args, **kwargs)

    WeightsEnum.get_state_dict, nn.Module.load_state_dict = fake_get, fake_load
    try:
        yield
    finally:
        WeightsEnum.get_state_dict, nn.Module.load_state_dict = get, load


_noted: set[str] = set()


def _note(name: str) -> None:
    if name not in _noted:  # once per model and process
        _noted.add(name)
        print(f"REHEARSAL: {name} built with random weights (pretrained weights are not downloaded in a "
              "rehearsal); the code path is the real one, but what pretraining gives is absent.")


def pretrained(name: str, cfg=None, weights: str = "DEFAULT", **kwargs) -> nn.Module:
    """A pretrained model by name, its weights cached under the course's weights folder.

    ``name``: a torchvision model ("resnet18", "fasterrcnn_mobilenet_v3_large_fpn", "deeplabv3_resnet50" ...;
    ``weights`` names the enum member, default DEFAULT), ``"open_clip:ARCH/TAG"`` (e.g.
    "open_clip:ViT-B-32/laion2b_s34b_b79k"; returns the CLIP model, get its tokenizer with
    ``open_clip.get_tokenizer(ARCH)``) or ``"timm:NAME"``. ``kwargs`` go to the builder. In a rehearsal
    (:func:`random_weights`) the same builder makes the same architecture with random weights, and says so.
    """
    rehearse = random_weights(cfg)
    use_weights_cache()
    if name.startswith("open_clip:"):
        import open_clip

        arch, _, tag = name.split(":", 1)[1].partition("/")
        if not rehearse:
            return open_clip.create_model(arch, pretrained=tag or None, **kwargs)
        tag_cfg = open_clip.get_pretrained_cfg(arch, tag) if tag else {}
        _note(name)
        return open_clip.create_model(arch, pretrained=None, force_quick_gelu=bool(tag_cfg.get("quick_gelu")),
                                      pretrained_text=False, **kwargs)
    if name.startswith("timm:"):
        import timm

        model = timm.create_model(name.split(":", 1)[1], pretrained=not rehearse, **kwargs)
        if rehearse:
            _note(name)
        return model
    import torchvision

    enum = torchvision.models.get_model_weights(name)
    chosen = enum.DEFAULT if weights == "DEFAULT" else enum[weights]
    if not rehearse:
        return torchvision.models.get_model(name, weights=chosen, **kwargs)
    with _no_download():
        model = torchvision.models.get_model(name, weights=chosen, **kwargs)
    _note(name)
    return model


def _build(arch: str, num_classes: int | None) -> tuple[nn.Module, dict]:
    """The architecture (random weights) and the pretrained state_dict for ``arch``."""
    import torchvision

    if arch in _TORCHVISION:
        use_weights_cache()
        weights = torchvision.models.get_model_weights(arch).DEFAULT  # ImageNet-1k, cached under TORCH_HOME
        model = torchvision.models.get_model(arch, weights=None)
        return model, weights.get_state_dict(progress=False, check_hash=True)
    path = weights_path(arch)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint {path}: pretrain the model and save it with "
                                f"save_weights(model, {arch!r}) first.")
    config = json.loads(path.with_suffix(".json").read_text()) if path.with_suffix(".json").is_file() else {}
    kwargs = {k: v for k, v in config.items() if k in inspect.signature(simple_cnn).parameters}
    kwargs["num_classes"] = config.get("num_classes", num_classes or 10)
    return simple_cnn(**kwargs), torch.load(path, map_location="cpu", weights_only=True)


def load_backbone(arch: str, num_classes: int | None = None, cfg=None) -> nn.Module:
    """Pretrained model ``arch`` ("resnet18/34/50": torchvision ImageNet weights; else a course checkpoint name).

    Both kinds go through ``model.load_state_dict(state_dict)``; the returned model keeps its old head
    (use :func:`replace_head`). In a rehearsal (see :func:`random_weights`) the torchvision ones come
    from :func:`pretrained` with random weights; course checkpoints are made by the lesson, so they load.
    """
    if arch in _TORCHVISION and random_weights(cfg):
        return pretrained(arch, cfg)
    model, state = _build(arch, num_classes)
    model.load_state_dict(state)  # strict: every key must match, or we loaded the wrong file
    return model


def _last_linear(model: nn.Module) -> tuple[nn.Module, str]:
    """(parent module, attribute name) of the last nn.Linear: the classification head."""
    found = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            found = name
    if found is None:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer: pass a classifier with a linear head.")
    parent_name, _, attr = found.rpartition(".")
    return model.get_submodule(parent_name) if parent_name else model, attr


def replace_head(model: nn.Module, num_classes: int | None) -> nn.Linear | nn.Identity:
    """Swap the last nn.Linear for a new one with ``num_classes`` outputs (None: nn.Identity, a feature extractor)."""
    parent, attr = _last_linear(model)
    old = getattr(parent, attr)
    new = nn.Identity() if num_classes is None else nn.Linear(old.in_features, num_classes)
    setattr(parent, attr, new)
    return new


def freeze(module: nn.Module, frozen: bool = True) -> nn.Module:
    """Switch gradients off (or on) for every parameter of ``module``; returns it."""
    for p in module.parameters():
        p.requires_grad_(not frozen)
    return module


def count_trainable(module: nn.Module) -> int:
    """Number of parameters that receive gradients."""
    return count_params(module, trainable_only=True)


def param_groups(model: nn.Module, head: nn.Module, lr: float, backbone_lr: float,
                 weight_decay: float = 5e-4) -> list[dict]:
    """Optimizer param groups: the head's parameters at ``lr``, all other trainable ones at ``backbone_lr``.

    Biases and norm scales (1-D tensors) get no weight decay, as in ``course_utils.train.make_optimizer``.
    """
    head_ids = {id(p) for p in head.parameters()}
    groups = []
    for name, group_lr, pick in (("backbone", backbone_lr, lambda p: id(p) not in head_ids),
                                 ("head", lr, lambda p: id(p) in head_ids)):
        params = [p for p in model.parameters() if p.requires_grad and pick(p)]
        for decay in (True, False):
            chosen = [p for p in params if (p.ndim >= 2) == decay]
            if chosen:
                groups.append({"params": chosen, "lr": group_lr, "weight_decay": weight_decay if decay else 0.0,
                               "name": f"{name}{'' if decay else '_no_decay'}"})
    return groups


@torch.no_grad()
def extract_features(model: nn.Module, images: torch.Tensor, mean: Sequence[float], std: Sequence[float],
                     batch_size: int = 256, device: str | torch.device = "cpu") -> torch.Tensor:
    """Run ``model`` in eval mode over uint8 NCHW ``images`` (normalised with mean/std in [0, 1]); float (N, D) on CPU."""
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"extract_features wants uint8 images N×C×H×W, got {images.dtype} {tuple(images.shape)}")
    was_training = model.training
    model.eval().to(device)  # BatchNorm uses its running statistics: features do not depend on the batch
    m = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(device).float() / 255
        out.append(model((x - m) / s).flatten(1).float().cpu())  # (B, D)
    model.train(was_training)
    return torch.cat(out)


def nearest_neighbours(query: torch.Tensor, bank: torch.Tensor, k: int = 5, metric: str = "cosine") -> torch.Tensor:
    """Indices (N, k) of the ``k`` rows of ``bank`` (M, D) closest to each row of ``query`` (N, D), nearest first."""
    query, bank = query.flatten(1).float(), bank.flatten(1).float()
    if metric == "cosine":
        sim = nn.functional.normalize(query, dim=1) @ nn.functional.normalize(bank, dim=1).T  # (N, M)
        return sim.topk(k, dim=1).indices
    if metric == "l2":
        return torch.cdist(query, bank).topk(k, dim=1, largest=False).indices
    raise ValueError(f"metric={metric!r}: use 'cosine' or 'l2'")


def to_tensor_set(dataset: Iterable, size: int, indices: Iterable[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 (N, 3, size, size), int64 (N,)) from a dataset of (PIL image or uint8 CHW tensor, int label).

    Each image is resized so its short side is ``size``, then centre-cropped to a square.
    """
    from torchvision.transforms.v2 import functional as F

    images, labels = [], []
    for i in (range(len(dataset)) if indices is None else indices):
        image, label = dataset[i]
        image = F.to_image(image)[:3]  # (3, H, W) uint8; drops an alpha channel
        image = F.center_crop(F.resize(image, size, antialias=True), [size, size])
        images.append(image.as_subclass(torch.Tensor))
        labels.append(int(label))
    return torch.stack(images), torch.tensor(labels, dtype=torch.int64)
