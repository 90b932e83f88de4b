"""The shapes world: a seeded generator of coloured geometric objects on textured, noisy backgrounds.

One renderer serves every task of the course (numpy only, vectorised over images, so thousands of
32x32 images take well under a second):

* :func:`make_classification` - one large object per image; the label is its shape (10 classes,
  CIFAR-10 style) or its shape and colour (100 classes with 20 superclasses, CIFAR-100 style).
* :func:`make_scenes` - several objects per image with instance masks and boxes, for detection,
  segmentation and captions.

Variation that a model has to learn past: position, scale, rotation, colour jitter and lighting,
partial occlusion by a bar, clutter (dots and scratches), low-frequency colour noise, stripes and
pixel noise in the background. Images are uint8 NHWC (the on-disk layout); boxes are xyxy pixels.
"""
from __future__ import annotations

import numpy as np

__all__ = ["VERSION", "SHAPES", "COLOURS", "WARM", "UPRIGHT_DEGREES", "CIFAR100_FINE", "CIFAR100_COARSE", "make_classification",
           "make_scenes", "iter_scenes", "Scene"]

VERSION = 2  # bump when the rendering changes: cached sets are keyed by it
SHAPES = ("circle", "square", "triangle", "star", "hexagon", "cross", "ring", "crescent", "heart", "arrow")
# Named colours (RGB). CIFAR-100 superclasses group them into warm and cool halves.
COLOURS = {
    "red": (215, 35, 35), "orange": (245, 135, 20), "yellow": (240, 220, 40), "pink": (245, 120, 190),
    "brown": (125, 70, 30), "green": (30, 140, 50), "cyan": (40, 210, 220), "blue": (35, 60, 215),
    "purple": (130, 40, 175), "white": (245, 245, 245),
}
WARM = ("red", "orange", "yellow", "pink", "brown")
_COLOUR_NAMES = tuple(COLOURS)
_PALETTE = np.array([COLOURS[c] for c in _COLOUR_NAMES], dtype=np.float32)  # (10, 3)
# CIFAR-100 style: fine class = colour x shape (100), coarse = shape x warm/cool (20, 5 fine each).
CIFAR100_FINE = tuple(f"{c}_{s}" for s in SHAPES for c in _COLOUR_NAMES)
CIFAR100_COARSE = tuple(f"{g}_{s}s" for s in SHAPES for g in ("warm", "cool"))
UPRIGHT_DEGREES = 15  # make_classification(upright=True): largest tilt from the canonical pose
TYPICAL_COLOUR = 0.5  # CIFAR-10 variant: chance that an object has its class's own colour (else random)
_CHUNK = 512  # images rendered at once; bounds memory (about 50 MB of temporaries at 32x32)


# ---- shape membership in the object's own frame (u, v), nominal radius 1 --------------------------
def _halfplanes(u, v, n: int, inradius: float, phase: float = 0.0):
    inside = np.ones(u.shape, dtype=bool)
    for k in range(n):
        a = phase + 2 * np.pi * k / n
        inside &= u * np.cos(a) + v * np.sin(a) < inradius
    return inside


def _star(u, v, points: int = 5, inner: float = 0.45):
    r = np.hypot(u, v)
    sector = 2 * np.pi / points
    t = np.abs(np.mod(np.arctan2(v, u), sector) - sector / 2)  # 0 at the inner vertex direction
    # edge from outer vertex (1, angle sector/2) to inner vertex (inner, angle 0), in (t, r) polar form
    ox, oy = np.cos(sector / 2), np.sin(sector / 2)
    ix, iy = inner, 0.0
    x, y = r * np.cos(t), r * np.sin(t)
    cross = (ox - ix) * (y - iy) - (oy - iy) * (x - ix)
    return cross >= 0  # same side of the edge as the centre


def _shape_mask(kind: int, u, v):
    r2 = u * u + v * v
    name = SHAPES[kind]
    if name == "circle":
        return r2 < 0.8
    if name == "square":
        return np.maximum(np.abs(u), np.abs(v)) < 0.75
    if name == "triangle":
        return _halfplanes(u, v + 0.15, 3, 0.5, np.pi / 2)
    if name == "star":
        return _star(u, v)
    if name == "hexagon":
        return _halfplanes(u, v, 6, 0.78)
    if name == "cross":
        au, av = np.abs(u), np.abs(v)
        return ((au < 0.28) & (av < 0.9)) | ((av < 0.28) & (au < 0.9))
    if name == "ring":
        return (r2 < 0.85) & (r2 > 0.3)
    if name == "crescent":
        return (r2 < 0.85) & ((u - 0.45) ** 2 + v * v > 0.5)
    if name == "heart":
        x, y = 1.15 * u, -1.15 * v + 0.25
        return (x * x + y * y - 1) ** 3 - x * x * y ** 3 < 0
    if name == "arrow":
        shaft = (np.abs(v) < 0.2) & (u > -0.9) & (u < 0.15)
        head = (u >= 0.1) & (u < 0.9) & (np.abs(v) < (0.9 - u) * 0.9)
        return shaft | head
    raise ValueError(f"unknown shape index {kind}")


def _bar(u, v):
    return (np.abs(u) < 1.0) & (np.abs(v) < 0.18)


def _coverage(kind, cx, cy, radius, angle, size: int, ss: int = 2) -> np.ndarray:
    """Anti-aliased coverage (N, H, W) float32 in [0, 1] of one object per image; kind -1 = bar."""
    f32 = np.float32
    g = (np.arange(size * ss, dtype=f32) + f32(0.5)) / f32(ss)
    dx = g[None, None, :] - cx.astype(f32)[:, None, None]
    dy = g[None, :, None] - cy.astype(f32)[:, None, None]
    inv = 1 / radius.astype(f32)[:, None, None]
    c, s = np.cos(angle).astype(f32)[:, None, None] * inv, np.sin(angle).astype(f32)[:, None, None] * inv
    u = dx * c + dy * s
    v = dy * c - dx * s  # (N, H*ss, W*ss)
    inside = np.zeros(u.shape, dtype=bool)
    for k in np.unique(kind):
        sel = kind == k
        inside[sel] = _bar(u[sel], v[sel]) if k < 0 else _shape_mask(int(k), u[sel], v[sel])
    if ss == 1:
        return inside.astype(np.float32)
    hits = sum(inside[:, i::ss, j::ss].astype(np.uint8) for i in range(ss) for j in range(ss))
    return hits.astype(np.float32) * np.float32(1 / ss ** 2)


def _background(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Tinted grey + low-frequency colour noise + stripes + pixel noise: (N, H, W, 3) float32."""
    base = rng.uniform(50, 200, (n, 1, 1, 1)) + rng.normal(0, 22, (n, 1, 1, 3))
    low = rng.standard_normal((n, 3, 4, 4), dtype=np.float32) * rng.uniform(8, 35, (n, 1, 1, 1)).astype(np.float32)
    t = np.linspace(0, 3, size, dtype=np.float32)
    w = np.maximum(0, 1 - np.abs(t[:, None] - np.arange(4, dtype=np.float32)[None, :]))  # (size, 4) bilinear
    low = (w @ low @ w.T).transpose(0, 2, 3, 1)  # (N, H, W, 3)
    theta, freq = rng.uniform(0, np.pi, n), rng.uniform(0.5, 2.5, n) * 2 * np.pi / size * 3
    phase, amp = rng.uniform(0, 2 * np.pi, n), rng.uniform(0, 18, n) * (rng.random(n) < 0.6)
    g = np.arange(size, dtype=np.float32)
    proj = (np.cos(theta) * freq)[:, None, None] * g[None, None, :] + (np.sin(theta) * freq)[:, None, None] * g[None, :, None]
    stripes = (amp[:, None, None] * np.sin(proj + phase[:, None, None]))[..., None]
    noise = rng.standard_normal((n, size, size, 3), dtype=np.float32)
    noise *= rng.uniform(3, 12, (n, 1, 1, 1)).astype(np.float32)
    noise += low
    noise += stripes.astype(np.float32)
    noise += base.astype(np.float32)
    return noise


def _paint(img, alpha, colour, shade=None):
    """Alpha-composite a flat (optionally shaded) colour (N, 3) onto img (N, H, W, 3) in place."""
    n, y, x = np.nonzero(alpha)  # only covered pixels: clutter and objects cover a small part of each image
    a = alpha[n, y, x][:, None]
    col = colour[n] if shade is None else colour[n] * shade[n, y, x][:, None]
    img[n, y, x] = img[n, y, x] * (1 - a) + a * col


def _shading(rng, n: int, size: int, cx, cy, radius):
    """Linear lighting gradient across each object: multiplies its colour by 0.75..1.25."""
    phi = rng.uniform(0, 2 * np.pi, n)
    g = np.arange(size, dtype=np.float32) + 0.5
    d = (np.cos(phi)[:, None, None] * (g[None, None, :] - cx[:, None, None])
         + np.sin(phi)[:, None, None] * (g[None, :, None] - cy[:, None, None])) / radius[:, None, None]
    return 1 + 0.25 * np.clip(d, -1, 1) * rng.uniform(0.3, 1, n)[:, None, None]


def _clutter(rng, img, size: int, slots: int, scale: float) -> None:
    """Draw up to ``slots`` dots and scratches per image (small, never one of the object classes)."""
    n = img.shape[0]
    for _ in range(slots):
        on = rng.random(n) < 0.5
        kind = np.where(rng.random(n) < 0.5, SHAPES.index("circle"), -1)
        cx, cy = rng.uniform(0, size, n), rng.uniform(0, size, n)
        radius = np.where(kind < 0, rng.uniform(2, 5, n), rng.uniform(1.2, 2.5, n)) * scale
        alpha = _coverage(kind, cx, cy, radius, rng.uniform(0, np.pi, n), size, ss=1) * on[:, None, None]
        _paint(img, alpha, rng.uniform(0, 255, (n, 3)).astype(np.float32))


def _occlude(rng, img, cx, cy, radius, p: float = 0.35) -> None:
    """With probability ``p``, lay a background-coloured bar across part of each object."""
    n, size = img.shape[0], img.shape[1]
    on = rng.random(n) < p
    phi = rng.uniform(0, 2 * np.pi, n)
    off = rng.uniform(0.45, 0.85, n) * radius
    bx, by = cx + off * np.cos(phi), cy + off * np.sin(phi)
    alpha = _coverage(np.full(n, -1), bx, by, radius * 1.3, phi + np.pi / 2, size) * on[:, None, None]
    colour = img.reshape(n, -1, 3).mean(1) + rng.normal(0, 20, (n, 3))
    _paint(img, alpha, colour.astype(np.float32))


def _object_colours(rng, colour_idx):
    return np.clip(_PALETTE[colour_idx] + rng.normal(0, 12, (len(colour_idx), 3)), 0, 255).astype(np.float32)


def make_classification(n: int, size: int = 32, seed: int = 0, classes: int = 10, upright: bool = False):
    """``n`` images of one large object each: (images uint8 (N, H, W, 3), fine int64 (N,), coarse int64 (N,)).

    classes=10: label = shape; colour is the class's own palette colour with probability
    ``TYPICAL_COLOUR``, else random (a cue a linear model can use, as in real CIFAR); classes=100: label = colour x shape
    (``CIFAR100_FINE``), coarse = shape x warm/cool (``CIFAR100_COARSE``). Labels cycle so every
    class has n // classes or one more images, in a seeded order. ``upright``: objects within
    ``UPRIGHT_DEGREES`` of their canonical pose, as in photos (else at any angle); the same seed gives
    the same labels, positions, colours and lighting either way.
    """
    if classes not in (10, 100):
        raise ValueError(f"classes must be 10 or 100, got {classes}")
    rng = np.random.default_rng([seed, classes, size, 1])
    fine = rng.permutation(np.arange(n) % classes)
    if classes == 10:  # like CIFAR's green frogs: colour hints at the class half the time
        typical = rng.random(n) < TYPICAL_COLOUR
        shape, colour = fine, np.where(typical, fine % len(COLOURS), rng.integers(0, len(COLOURS), n))
    else:
        shape, colour = fine // len(COLOURS), fine % len(COLOURS)
    warm = np.isin(np.array(_COLOUR_NAMES)[colour], WARM)
    coarse = 2 * shape + (~warm)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        sl = slice(start, min(n, start + _CHUNK))
        m = sl.stop - sl.start
        img = _background(rng, m, size)
        _clutter(rng, img, size, slots=2, scale=size / 32)
        radius = rng.uniform(0.24, 0.42, m).astype(np.float32) * size
        cx = rng.uniform(0.6 * radius, size - 0.6 * radius)
        cy = rng.uniform(0.6 * radius, size - 0.6 * radius)
        angle = rng.uniform(0, 2 * np.pi, m)
        if upright:  # the same draw, squeezed into +-UPRIGHT_DEGREES
            angle = (angle - np.pi) * (UPRIGHT_DEGREES / 180)
        alpha = _coverage(shape[sl], cx, cy, radius, angle, size)
        _paint(img, alpha, _object_colours(rng, colour[sl]), _shading(rng, m, size, cx, cy, radius))
        _occlude(rng, img, cx, cy, radius)
        _clutter(rng, img, size, slots=1, scale=size / 32)
        images[sl] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return images, fine.astype(np.int64), coarse.astype(np.int64)


class Scene(dict):
    """One scene's objects: keys shape, colour (int64 (K,)), boxes (float32 (K, 4) xyxy), masks (bool (K, H, W))."""


def make_scenes(n: int, size: int = 128, seed: int = 0, max_objects: int = 4, min_pixels: int = 40,
                radius: tuple[float, float] = (0.09, 0.2)):
    """``n`` images with 1..max_objects objects each: (images uint8 (N, H, W, 3), list of :class:`Scene`).

    Later objects occlude earlier ones; masks and boxes describe the *visible* part, and objects with
    fewer than ``min_pixels`` visible pixels are dropped (as VOC/COCO annotators would). Object radii
    are drawn from ``radius`` (fractions of the image side). Rendered without supersampling: masks are
    exactly the pixels each object covers. :func:`iter_scenes` gives the same scenes chunk by chunk.
    """
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    scenes: list[Scene] = []
    for chunk, chunk_scenes in iter_scenes(n, size, seed, max_objects, min_pixels, radius):
        images[len(scenes):len(scenes) + len(chunk)] = chunk
        scenes += chunk_scenes
    return images, scenes


def iter_scenes(n: int, size: int = 128, seed: int = 0, max_objects: int = 4, min_pixels: int = 40,
                radius: tuple[float, float] = (0.09, 0.2)):
    """:func:`make_scenes`'s images and scenes, yielded a chunk at a time as (images uint8 (M, H, W, 3), scenes):
    the large real-size worlds of a rehearsal are written without holding them all in memory."""
    rng = np.random.default_rng([seed, size, max_objects, 2, int(radius[0] * 1000), int(radius[1] * 1000)])
    count = rng.integers(1, max_objects + 1, n)
    chunk = _CHUNK // 4 if size <= 128 else max(4, _CHUNK // 4 * 128 * 128 // (size * size))  # bounds memory
    for start in range(0, n, chunk):
        m = min(n, start + chunk) - start
        img = _background(rng, m, size)
        _clutter(rng, img, size, slots=4, scale=size / 48)
        owner = np.full((m, size, size), -1, dtype=np.int64)  # which object owns each pixel
        shapes = rng.integers(0, len(SHAPES), (m, max_objects))
        colours = rng.integers(0, len(COLOURS), (m, max_objects))
        for k in range(max_objects):
            present = count[start:start + m] > k
            r = rng.uniform(*radius, m).astype(np.float32) * size
            cx = rng.uniform(0.8 * r, size - 0.8 * r)
            cy = rng.uniform(0.8 * r, size - 0.8 * r)
            alpha = _coverage(shapes[:, k], cx, cy, r, rng.uniform(0, 2 * np.pi, m), size, ss=1)
            alpha *= present[:, None, None]
            _paint(img, alpha, _object_colours(rng, colours[:, k]), _shading(rng, m, size, cx, cy, r))
            owner[alpha > 0.5] = k
        scenes: list[Scene] = []
        for i in range(m):
            keep, boxes, masks = [], [], []
            for k in range(count[start + i]):
                mask = owner[i] == k
                if mask.sum() < min_pixels:
                    continue
                ys, xs = np.nonzero(mask)
                keep.append(k)
                boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
                masks.append(mask)
            scenes.append(Scene(shape=shapes[i, keep].astype(np.int64), colour=colours[i, keep].astype(np.int64),
                                boxes=np.array(boxes, dtype=np.float32).reshape(-1, 4),
                                masks=np.array(masks, dtype=bool).reshape(-1, size, size)))
        yield np.clip(np.rint(img), 0, 255).astype(np.uint8), scenes
