""""Try it" sliders: move a value and watch what it changes, with a static grid for everyone else.

Each lesson's widget is a plain function ``compute(value) -> result`` (tested like any other) and a
``panel(ax, value)`` that draws one result. :func:`try_it` shows the panel at a few fixed values side by
side (what papermill, the site and a learner without a live kernel see), then, in a live notebook
(JupyterLab, Colab, Binder), the same panel behind ipywidgets controls.

    conv_kernel     3×3 kernel on a photo (lesson 04)      nms_keep       IoU threshold of NMS (10)
    fgsm_attack     ε of FGSM and the accuracy (12)        head_attention one layer and head of a ViT (14)
    prompt_probs    typed prompts -> zero-shot probabilities of a CLIP model (15)
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

__all__ = ["try_it", "KERNELS", "conv_kernel", "nms_keep", "fgsm_attack", "head_attention", "prompt_probs",
           "kernel_panel", "nms_panel", "fgsm_panel", "attention_panel", "prompt_panel"]

KERNELS = {  # 3×3 kernels to start from (rows top to bottom)
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "box blur": [[1 / 9] * 3] * 3,
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "Sobel x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "Sobel y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "outline": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
}


def _live() -> bool:
    """Widgets only where someone can move them: a kernel with ipywidgets, unless ``$COURSE_LIVE=0`` (what
    ``course run``, the test suite and the grader set: executed notebooks keep the static grid)."""
    from .train.live import live_default
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return live_default(quiet=False)  # $COURSE_LIVE if set, else whether a kernel runs: as fit's curves


def try_it(panel: Callable, grid: Sequence[dict], controls: dict, title: str = "", live: bool | None = None,
           size: float = 2.6):
    """Draw ``panel(ax, **kw)`` for each ``kw`` in ``grid`` (one figure), then the live widget if a kernel runs.

    ``controls``: keyword -> ipywidgets control (or a value ipywidgets.interact understands, e.g. (0, 1, 0.1)).
    Returns the static figure (shown once) and, when live, the ``ipywidgets.interactive`` object.
    """
    import matplotlib.pyplot as plt
    from IPython.display import display

    fig, axes = plt.subplots(1, len(grid), figsize=(size * len(grid), size + 0.4), squeeze=False)
    for ax, kw in zip(axes[0], grid):
        panel(ax, **kw)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    plt.close(fig)
    display(fig)
    if not (_live() if live is None else live):
        return fig, None
    import ipywidgets

    def one(**kw):
        f, ax = plt.subplots(figsize=(size + 1.4, size + 1.0))
        panel(ax, **kw)
        f.tight_layout()
        plt.show()

    widget = ipywidgets.interactive(one, **controls)
    display(widget)
    return fig, widget


# ---- lesson 04: a 3×3 kernel on a photo ---------------------------------------------------------------
def conv_kernel(image: torch.Tensor, kernel) -> torch.Tensor:
    """Cross-correlate a grey image (H, W), floats in [0, 1], with a 3×3 kernel; border repeated; (H, W)."""
    k = torch.as_tensor(kernel, dtype=torch.float32)
    if k.shape != (3, 3):
        raise ValueError(f"kernel of shape {tuple(k.shape)}: give 3 rows of 3 numbers")
    if image.ndim != 2:
        raise ValueError(f"image of shape {tuple(image.shape)}: give one grey image (H, W)")
    x = F.pad(image.float()[None, None], (1, 1, 1, 1), mode="replicate")  # (1, 1, H+2, W+2)
    return F.conv2d(x, k[None, None])[0, 0]


def kernel_panel(ax, image: torch.Tensor, kernel, name: str = "") -> None:
    out = conv_kernel(image, kernel)
    ax.imshow(out.numpy(), cmap="gray")
    ax.set_title(name or "\n".join(" ".join(f"{v:g}" for v in row) for row in torch.as_tensor(kernel).tolist()),
                 fontsize=8)
    ax.axis("off")


# ---- lesson 10: the IoU threshold of non-maximum suppression --------------------------------------------
def nms_keep(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, min_score: float = 0.0) -> torch.Tensor:
    """Indices of the boxes (xyxy) NMS keeps at ``iou_threshold``, best first, among those scoring > min_score."""
    from torchvision.ops import nms

    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold={iou_threshold}: an IoU lies between 0 and 1")
    cand = (scores > min_score).nonzero().flatten()
    return cand[nms(boxes[cand].float(), scores[cand].float(), iou_threshold)]


def nms_panel(ax, image: torch.Tensor, boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float,
              min_score: float = 0.1) -> None:
    from .plots import draw_boxes

    keep = nms_keep(boxes, scores, iou_threshold, min_score)
    draw_boxes(ax, image, boxes[keep], "lime", 1.2)
    n = int((scores > min_score).sum())
    ax.set_title(f"IoU ≤ {iou_threshold:.2f}: {len(keep)} of {n} kept", fontsize=8)


# ---- lesson 12: FGSM's ε -------------------------------------------------------------------------------
def fgsm_attack(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> tuple[torch.Tensor, float]:
    """FGSM images at ``eps`` (pixels in [0, 1]) and the model's accuracy on them."""
    from .robustness import accuracy_under, fgsm

    if eps < 0:
        raise ValueError(f"eps={eps}: the attack's budget is a non-negative pixel change")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    adv = fgsm(model, x.to(device), y.to(device), eps).cpu() if eps > 0 else x.clone()
    model.train(was_training)
    return adv, accuracy_under(model, adv, y)


def fgsm_panel(ax, model, x: torch.Tensor, y: torch.Tensor, eps: float, index: int = 0) -> None:
    adv, acc = fgsm_attack(model, x, y, eps)
    ax.imshow(adv[index].permute(1, 2, 0).numpy())
    ax.set_title(f"ε = {eps * 255:.0f}/255: accuracy {acc:.2f}", fontsize=8)
    ax.axis("off")


# ---- lesson 14: attention per layer and head -----------------------------------------------------------
def head_attention(model, image: torch.Tensor, layer: int, head: int) -> torch.Tensor:
    """What the class token attends to in block ``layer``, head ``head``: a (grid, grid) map summing to ≤ 1."""
    maps = model.attention_maps(image[None])  # list of (1, heads, T, T)
    if not 0 <= layer < len(maps) or not 0 <= head < maps[0].shape[1]:
        raise ValueError(f"layer {layer}, head {head}: this model has {len(maps)} layers of {maps[0].shape[1]} heads")
    return maps[layer][0, head, 0, 1:].reshape(model.grid, model.grid).cpu()


def attention_panel(ax, model, image: torch.Tensor, layer: int, head: int, mean=None, std=None) -> None:
    from .plots import to_hwc

    att = head_attention(model, image, layer, head)
    ax.imshow(to_hwc(image.cpu(), mean, std))
    ax.imshow(att.numpy(), cmap="inferno", alpha=0.6, extent=(0, image.shape[-1], image.shape[-2], 0))
    ax.set_title(f"layer {layer}, head {head}", fontsize=8)
    ax.axis("off")


# ---- lesson 15: typed prompts, zero-shot probabilities ---------------------------------------------------
@torch.no_grad()
def prompt_probs(encode_image: Callable, encode_text: Callable, image: torch.Tensor, prompts: Sequence[str],
                 temperature: float) -> torch.Tensor:
    """Softmax over ``prompts`` of the image's cosine similarity to each, divided by ``temperature``; (P,)."""
    prompts = [p.strip() for p in prompts if p.strip()]
    if not prompts:
        raise ValueError("no prompt: type at least one, e.g. 'a red circle, a blue square'")
    img = F.normalize(encode_image(image[None]).float(), dim=-1)  # (1, D)
    txt = F.normalize(encode_text(prompts).float(), dim=-1)  # (P, D)
    return ((img @ txt.T)[0] / temperature).softmax(0).cpu()


def prompt_panel(ax, encode_image, encode_text, image: torch.Tensor, prompts: str, temperature: float) -> None:
    names = [p.strip() for p in prompts.split(",") if p.strip()]
    probs = prompt_probs(encode_image, encode_text, image, names, temperature)
    ax.barh(range(len(names)), probs.numpy(), color="tab:blue")
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability", fontsize=8)
    from .plots import to_hwc

    inset = ax.inset_axes([0.68, 0.02, 0.3, 0.3])  # the image, bottom right
    inset.imshow(to_hwc(image.cpu()))
    inset.axis("off")


# ---- one call per lesson: the grid at fixed values and the controls ---------------------------------------
def kernel_demo(photo: torch.Tensor, presets: Sequence[str] = ("identity", "box blur", "sharpen", "Sobel x", "outline")):
    """Lesson 04: the presets side by side, then nine sliders (one per weight) on ``photo`` (H, W) in [0, 1]."""
    import ipywidgets

    names = [f"k{r}{c}" for r in range(3) for c in range(3)]
    as_kw = lambda k: dict(zip(names, torch.as_tensor(k, dtype=torch.float32).flatten().tolist()))
    panel = lambda ax, name="", **k: kernel_panel(ax, photo, [[k[f"k{r}{c}"] for c in range(3)] for r in range(3)], name)
    grid = [{"name": n, **as_kw(KERNELS[n])} for n in presets]
    start = as_kw(KERNELS["sharpen"])
    controls = {n: ipywidgets.FloatSlider(value=start[n], min=-8, max=8, step=0.25, description=n,  # every preset fits
                                          continuous_update=False) for n in names}
    return try_it(panel, grid, {"name": ipywidgets.fixed(""), **controls})


def nms_demo(image: torch.Tensor, boxes: torch.Tensor, scores: torch.Tensor, grid=(0.1, 0.3, 0.5, 0.7, 0.9)):
    """Lesson 10: one image's detections after NMS at several IoU thresholds, then a threshold slider."""
    import ipywidgets

    panel = lambda ax, iou_threshold: nms_panel(ax, image, boxes, scores, iou_threshold)
    slider = ipywidgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="IoU threshold",
                                    continuous_update=False, style={"description_width": "initial"})
    return try_it(panel, [{"iou_threshold": t} for t in grid], {"iou_threshold": slider})


def fgsm_demo(model, x: torch.Tensor, y: torch.Tensor, grid=(0, 2, 4, 8, 16)):
    """Lesson 12: an FGSM image and the accuracy on ``x`` at ε = grid/255, then an ε slider (in 1/255)."""
    import ipywidgets

    panel = lambda ax, eps_255: fgsm_panel(ax, model, x, y, eps_255 / 255)
    slider = ipywidgets.IntSlider(value=8, min=0, max=32, step=1, description="ε × 255", continuous_update=False)
    return try_it(panel, [{"eps_255": e} for e in grid], {"eps_255": slider})


def attention_demo(model, image: torch.Tensor, mean=None, std=None):
    """Lesson 14: the class token's attention in each layer (head 0), then layer and head sliders."""
    import ipywidgets

    depth, heads = len(model.blocks), model.blocks[0].self_attn.num_heads
    panel = lambda ax, layer, head: attention_panel(ax, model, image, layer, head, mean, std)
    controls = {"layer": ipywidgets.IntSlider(value=depth - 1, min=0, max=depth - 1, description="layer"),
                "head": ipywidgets.IntSlider(value=0, min=0, max=heads - 1, description="head")}
    return try_it(panel, [{"layer": i, "head": 0} for i in range(depth)], controls)


def prompt_demo(encode_image, encode_text, image: torch.Tensor, prompt_sets: Sequence[str], temperature: float):
    """Lesson 15: zero-shot probabilities for a few comma-separated prompt lists, then a text box to type your own."""
    import ipywidgets

    panel = lambda ax, prompts: prompt_panel(ax, encode_image, encode_text, image, prompts, temperature)
    box = ipywidgets.Text(value=prompt_sets[0], description="prompts", continuous_update=False,
                          layout=ipywidgets.Layout(width="90%"))
    return try_it(panel, [{"prompts": p} for p in prompt_sets], {"prompts": box}, size=3.2)
