"""Procedural segmentation scenes: a small, learnable dataset with lots of boundary detail.

Every scene is drawn from a seed with :func:`numpy.random.default_rng` (never the global RNG),
using OpenCV and NumPy only, so the same seed always gives the same image and mask. Scenes
are made so that a compact FCN can learn them on a CPU while the skip variants differ: class
identity is readable from local colour *and* texture, but thin wires, narrow rings and small
dots need a fine output stride (FCN-8s) to be segmented well.

Classes and their cues (hue in degrees, before jitter):

* ``disc``: filled ellipses, red-orange (~5°), smooth radial shading with a highlight.
* ``box``: rotated rectangles, blue (~225°), bold two-tone stripes along the box axis.
* ``triangle``: irregular triangles, green (~120°), two-tone checkerboard.
* ``ring``: elliptic rings and arcs 5-10 px thick, cyan (~180°), light/dark segments.
* ``wire``: straight or curved strokes 5-7 px wide, yellow (~55°), plain and bright.
* ``dot``: clusters of small dots 9-17 px across, magenta (~300°), speckled.

The background is a blend of two low-saturation colours under smooth low-frequency noise,
with clutter that is *not* an object (soft blobs, thin grey lines, grey specks). Objects
overlap; later ones paint over earlier ones in both the image and the mask, so the mask is
exact for every pixel. Blur and noise are applied to the image only.

``domain="shifted"`` changes the rendering: a warm colour cast, an uneven illumination
gradient, a grained or tiled background, stronger blur and noise. A model trained on the
default domain does worse there, but a few shifted images suffice to adapt it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from core.data.palette import VOID

SCENE_CLASSES: tuple[str, ...] = ("background", "disc", "box", "triangle", "ring", "wire", "dot")
"""Class names of the generated scenes; index = label in the mask."""

DOMAINS: tuple[str, ...] = ("default", "shifted")
"""Accepted values of the ``domain`` argument."""

_DISC, _BOX, _TRIANGLE, _RING, _WIRE, _DOT = range(1, 7)

# Class hue (OpenCV units, 0-180) and half-width of its jitter; the families do not overlap.
_HUE: dict[int, tuple[float, float]] = {
    _DISC: (2.0, 7.0),
    _WIRE: (28.0, 5.0),
    _TRIANGLE: (60.0, 8.0),
    _RING: (90.0, 6.0),
    _BOX: (113.0, 7.0),
    _DOT: (150.0, 8.0),
}

_MIN_SIZE = 32
_F32 = np.float32


def scene_seed(seed: int, index: int) -> int:
    """Return the seed of scene ``index`` of a dataset generated with ``seed``.

    Derived with :class:`numpy.random.SeedSequence`, so that datasets with different seeds
    share no scenes.
    """
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=(int(index),))
    return int(ss.generate_state(1, dtype=np.uint64)[0])


def generate_scene(
    seed: int,
    size: tuple[int, int] = (256, 256),
    *,
    domain: str = "default",
    void_border: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one scene.

    Args:
        seed: Non-negative integer; the same seed always gives the same scene.
        size: ``(height, width)`` in pixels, each at least 32.
        domain: ``"default"`` or ``"shifted"`` (see the module docstring).
        void_border: If true, object pixels that touch a pixel of another label are set to
            the void label 255 (a 1 px band inside each object outline).

    Returns:
        ``(rgb, mask)``: an ``HxWx3`` uint8 RGB image and an ``HxW`` uint8 mask with labels
        in ``range(len(SCENE_CLASSES))`` (plus 255 if ``void_border``).

    Raises:
        ValueError: For a bad size, domain or seed.
    """
    h, w = _check_size(size)
    if domain not in DOMAINS:
        raise ValueError(f"Unknown scene domain {domain!r}; expected one of {DOMAINS}")
    if int(seed) < 0:
        raise ValueError(f"Scene seed must be non-negative, got {seed}")
    # Separate streams, so that both domains draw the same layout from the same seed.
    bg_ss, obj_ss, tex_ss, fx_ss = np.random.SeedSequence(int(seed)).spawn(4)
    rng = np.random.default_rng(bg_ss)
    shifted = domain == "shifted"
    scale = min(h, w) / 256.0

    img = _background(rng, h, w, shifted)
    if shifted:
        img += _shifted_texture(np.random.default_rng(tex_ss), h, w)
    _clutter(rng, img, scale)
    rng = np.random.default_rng(obj_ss)
    mask = np.zeros((h, w), np.uint8)
    canvas = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(4, 13))):
        cls = int(rng.integers(1, len(SCENE_CLASSES)))
        _draw_object(rng, img, mask, canvas, cls, scale)
    rgb = _finish(np.random.default_rng(fx_ss), img, shifted)
    if void_border:
        mask = _void_border(mask)
    return rgb, mask


def write_scene_dataset(
    out_dir: str | os.PathLike[str],
    count: int,
    seed: int,
    size: tuple[int, int] = (256, 256),
    val_fraction: float = 0.2,
    domain: str = "default",
    image_ext: str = ".jpg",
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``count`` scenes as a PASCAL VOC dataset and return its root.

    Layout: ``JPEGImages/<id><image_ext>`` (JPEG quality 95 or PNG),
    ``SegmentationClass/<id>.png`` (8-bit palette PNGs with the VOC colormap),
    ``ImageSets/Segmentation/{train,val,trainval}.txt`` and ``class_names.txt``. Ids are
    ``scene_<seed>_<index:05d>``; scene ``i`` is ``generate_scene(scene_seed(seed, i), ...)``.

    Args:
        out_dir: Dataset root; created if missing, existing files with the same names are
            replaced.
        count: Number of scenes (at least 1).
        seed: Dataset seed.
        size: ``(height, width)`` of each scene.
        val_fraction: Share of scenes in ``val`` (rounded; at least one each side when
            ``0 < val_fraction < 1`` and ``count >= 2``; 1.0 puts every scene in val,
            for a held-out test set).
        domain: Scene domain, as in :func:`generate_scene`.
        image_ext: ``".jpg"`` or ``".png"``.
        progress: Called as ``progress(done, count)`` after each scene.

    Raises:
        ValueError: For bad arguments.
    """
    if count < 1:
        raise ValueError(f"Scene count must be at least 1, got {count}")
    if int(seed) < 0:
        raise ValueError(f"Dataset seed must be non-negative, got {seed}")
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"val_fraction must be in [0, 1], got {val_fraction}")
    if domain not in DOMAINS:
        raise ValueError(f"Unknown scene domain {domain!r}; expected one of {DOMAINS}")
    ext = image_ext.lower() if image_ext.startswith(".") else "." + image_ext.lower()
    if ext not in (".jpg", ".jpeg", ".png"):
        raise ValueError(f"Unsupported image extension {image_ext!r}; use .jpg or .png")
    _check_size(size)

    from core.data.voc import write_voc_dataset  # imports torch; keep this module light

    ids = [f"scene_{seed}_{i:05d}" for i in range(count)]
    n_val = round(count * val_fraction)
    if count >= 2 and 0 < val_fraction < 1:
        n_val = min(max(n_val, 1), count - 1)
    order = np.random.default_rng(np.random.SeedSequence(entropy=int(seed), spawn_key=(2**31,)))
    val_idx = set(order.permutation(count)[:n_val].tolist())
    splits = {
        "train": [sid for i, sid in enumerate(ids) if i not in val_idx],
        "val": [sid for i, sid in enumerate(ids) if i in val_idx],
        "trainval": ids,
    }

    def items() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        for i, sid in enumerate(ids):
            rgb, mask = generate_scene(scene_seed(seed, i), size, domain=domain)
            yield sid, rgb, mask
            if progress is not None:  # resumed once the writer has stored scene i
                progress(i + 1, count)

    return write_voc_dataset(out_dir, items(), SCENE_CLASSES, splits, image_ext=ext, quality=95)


# ----------------------------------------------------------------------------- drawing


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    """Validate ``(height, width)``."""
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"Scene size must be (height, width), got {size!r}") from None
    if h < _MIN_SIZE or w < _MIN_SIZE:
        raise ValueError(f"Scene size must be at least {_MIN_SIZE}x{_MIN_SIZE}, got {h}x{w}")
    return h, w


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    """Convert one OpenCV-style HSV colour (H 0-180, S and V 0-255) to float RGB."""
    px = np.array([[[h % 180.0, s, v]]], np.uint8)
    return cv2.cvtColor(px, cv2.COLOR_HSV2RGB)[0, 0].astype(_F32)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int, ch: int = 1) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: a coarse random grid upsampled bicubically."""
    gh = max(2, round(cells * h / max(h, w)))
    gw = max(2, round(cells * w / max(h, w)))
    grid = rng.uniform(-1.0, 1.0, size=(gh, gw, ch)).astype(_F32)
    out = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return out.reshape(h, w, ch)


def _background(rng: np.random.Generator, h: int, w: int, shifted: bool) -> np.ndarray:
    """Return the background as float32 RGB: two low-saturation colours blended by noise.

    Draws the same numbers in both domains, so that the rest of the scene matches.
    """
    max_s = 80 if shifted else 60
    c1 = _hsv_to_rgb(rng.uniform(0, 180), rng.uniform(0, max_s), rng.uniform(50, 225))
    c2 = _hsv_to_rgb(rng.uniform(0, 180), rng.uniform(0, max_s), rng.uniform(50, 225))
    t = _smooth_noise(rng, h, w, int(rng.integers(2, 6)))
    t = np.clip(0.5 + 0.8 * t, 0.0, 1.0)
    img = c1 * (1.0 - t) + c2 * t
    img += 18.0 * _smooth_noise(rng, h, w, int(rng.integers(6, 14)))
    grain = _smooth_noise(rng, h, w, max(h, w) // 4)
    if not shifted:
        img += 5.0 * grain
    return img.astype(_F32)


def _shifted_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Background texture of the shifted domain: wavy wood grain or a tiled floor."""
    yy, xx = np.mgrid[0:h, 0:w].astype(_F32)
    if rng.random() < 0.5:
        theta = rng.uniform(0, np.pi)
        u = xx * np.cos(theta) + yy * np.sin(theta)
        warp = 10.0 * _smooth_noise(rng, h, w, 4)[..., 0]
        g = np.sin(2 * np.pi * (u + warp) / rng.uniform(7.0, 14.0))
        return (22.0 * g)[..., None].astype(_F32)
    tile = rng.uniform(24.0, 48.0)
    grout = rng.uniform(2.0, 3.5)
    on_line = ((yy % tile) < grout) | ((xx % tile) < grout)
    shade = rng.uniform(-12.0, 12.0, size=(int(h // tile) + 2, int(w // tile) + 2)).astype(_F32)
    tiles = shade[(yy // tile).astype(np.intp), (xx // tile).astype(np.intp)]
    return (tiles - 45.0 * on_line)[..., None].astype(_F32)


def _clutter(rng: np.random.Generator, img: np.ndarray, scale: float) -> None:
    """Paint background clutter that is not an object: soft blobs, grey lines, grey specks."""
    h, w = img.shape[:2]
    for _ in range(int(rng.integers(0, 6))):
        kind = rng.integers(0, 3)
        layer = np.zeros((h, w), np.uint8)
        grey = rng.uniform(30, 230)
        tint = _hsv_to_rgb(rng.uniform(0, 180), rng.uniform(0, 40), grey)
        if kind == 0:  # soft blob
            c = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
            ax = (int(rng.uniform(15, 60) * scale) + 1, int(rng.uniform(10, 40) * scale) + 1)
            cv2.ellipse(layer, c, ax, rng.uniform(0, 180), 0, 360, 255, -1)
            alpha = cv2.GaussianBlur(layer, (0, 0), rng.uniform(4, 10) * scale + 1)
            alpha = alpha.astype(_F32) * (rng.uniform(0.3, 0.7) / 255.0)
        elif kind == 1:  # thin grey line(s)
            for _ in range(int(rng.integers(1, 4))):
                p1 = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
                p2 = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
                cv2.line(layer, p1, p2, 255, int(rng.integers(1, 4)))
            alpha = layer.astype(_F32) * (rng.uniform(0.4, 0.9) / 255.0)
        else:  # grey specks
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            for _ in range(int(rng.integers(3, 10))):
                p = (int(cx + rng.normal(0, 25 * scale)), int(cy + rng.normal(0, 25 * scale)))
                cv2.circle(layer, p, int(rng.integers(2, 6) * scale) + 1, 255, -1)
            alpha = layer.astype(_F32) * (rng.uniform(0.5, 0.9) / 255.0)
        img += alpha[..., None] * (tint - img)


def _object_colours(rng: np.random.Generator, cls: int) -> tuple[float, float, float]:
    """Sample the (hue, saturation, value) of an object of class ``cls``."""
    centre, spread = _HUE[cls]
    return (
        centre + rng.uniform(-spread, spread),
        rng.uniform(150, 255),
        rng.uniform(150, 255),
    )


def _draw_object(
    rng: np.random.Generator,
    img: np.ndarray,
    mask: np.ndarray,
    canvas: np.ndarray,
    cls: int,
    scale: float,
) -> None:
    """Draw one object of class ``cls`` into ``img`` and ``mask`` (``canvas`` is scratch)."""
    h, w = mask.shape
    canvas[:] = 0
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    angle = rng.uniform(0, 180)
    hue, sat, val = _object_colours(rng, cls)
    base = _hsv_to_rgb(hue, sat, val)

    if cls == _DISC:
        a = rng.uniform(12, 50) * scale
        b = a * rng.uniform(0.6, 1.0)
        cv2.ellipse(canvas, (int(cx), int(cy)), (int(a), int(b)), angle, 0, 360, 1, -1)
    elif cls == _BOX:
        bw = rng.uniform(20, 100) * scale
        bh = rng.uniform(12, 64) * scale
        pts = cv2.boxPoints(((cx, cy), (bw, bh), angle))
        cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 1)
    elif cls == _TRIANGLE:
        r = rng.uniform(18, 58) * scale
        t0 = np.deg2rad(angle)
        ang = t0 + np.deg2rad(np.array([0.0, 120.0, 240.0]) + rng.uniform(-25, 25, 3))
        rad = r * rng.uniform(0.75, 1.0, 3)
        pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], axis=1)
        cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 1)
    elif cls == _RING:
        a = rng.uniform(14, 50) * scale
        b = a * rng.uniform(0.7, 1.0)
        thick = max(2, int(rng.integers(5, 11) * scale))
        start, span = 0.0, 360.0
        if rng.random() < 0.25:  # an open arc
            start, span = rng.uniform(0, 360), rng.uniform(180, 320)
        axes = (int(a), int(b))
        cv2.ellipse(canvas, (int(cx), int(cy)), axes, angle, start, start + span, 1, thick)
    elif cls == _WIRE:
        _wire_shape(rng, canvas, cx, cy, scale)
    else:
        spread = rng.uniform(8, 32) * scale
        for _ in range(int(rng.integers(3, 10))):
            p = (int(cx + rng.normal(0, spread)), int(cy + rng.normal(0, spread)))
            cv2.circle(canvas, p, max(2, int(rng.integers(4, 9) * scale)), 1, -1)

    x0, y0, bw_, bh_ = cv2.boundingRect(canvas)
    if bw_ == 0 or bh_ == 0:
        return
    sl = (slice(y0, y0 + bh_), slice(x0, x0 + bw_))
    sel = canvas[sl].astype(bool)
    yy, xx = np.mgrid[y0 : y0 + bh_, x0 : x0 + bw_].astype(_F32)
    tex = _texture(rng, cls, base, hue, sat, val, xx - cx, yy - cy, angle, scale)
    img[sl][sel] = tex[sel]
    mask[sl][sel] = cls


def _wire_shape(
    rng: np.random.Generator, canvas: np.ndarray, cx: float, cy: float, scale: float
) -> None:
    """Draw a straight, bent or curved stroke 5-7 px wide through ``(cx, cy)``."""
    length = rng.uniform(60, 200) * scale
    theta = rng.uniform(0, 2 * np.pi)
    d = np.array([np.cos(theta), np.sin(theta)])
    nrm = np.array([-d[1], d[0]])
    p0 = np.array([cx, cy]) - d * length / 2
    p3 = np.array([cx, cy]) + d * length / 2
    bend = rng.uniform(-0.5, 0.5, 2) * length if rng.random() < 0.7 else np.zeros(2)
    p1 = p0 + d * length / 3 + nrm * bend[0]
    p2 = p0 + d * 2 * length / 3 + nrm * bend[1]
    t = np.linspace(0.0, 1.0, 40)[:, None]
    pts = (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3
    thick = max(2, int(rng.integers(4, 7) * scale))
    cv2.polylines(canvas, [np.round(pts).astype(np.int32)], False, 1, thick)


def _texture(
    rng: np.random.Generator,
    cls: int,
    base: np.ndarray,
    hue: float,
    sat: float,
    val: float,
    dx: np.ndarray,
    dy: np.ndarray,
    angle: float,
    scale: float,
) -> np.ndarray:
    """Return the class texture (float32 RGB) on the grid of offsets ``dx, dy`` from the centre."""
    c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
    u = dx * c + dy * s
    v = -dx * s + dy * c
    if cls == _DISC:
        r = max(6.0, float(np.abs(dx).max() + np.abs(dy).max()) / 2)
        hx, hy = rng.uniform(-0.4, 0.4, 2) * r
        d2 = ((dx - hx) ** 2 + (dy - hy) ** 2) / (r * r)
        f = np.clip(1.1 - 0.55 * d2, 0.45, 1.1)
        return base * f[..., None]
    if cls == _BOX:
        period = rng.uniform(6, 11) * scale + 1
        dark = _hsv_to_rgb(hue, sat, val * rng.uniform(0.35, 0.55))
        on = ((v / period) % 1.0) < 0.5
        return np.where(on[..., None], base, dark)
    if cls == _TRIANGLE:
        period = rng.uniform(5, 10) * scale + 1
        light = _hsv_to_rgb(hue, sat * rng.uniform(0.3, 0.5), min(255.0, val + 40))
        chk = (np.floor(u / period) + np.floor(v / period)) % 2 == 0
        return np.where(chk[..., None], base, light)
    if cls == _RING:
        k = int(rng.integers(4, 9))
        phi = np.arctan2(dy, dx)
        on = np.floor((phi + np.pi) * k / np.pi) % 2 == 0
        light = _hsv_to_rgb(hue, sat * 0.45, min(255.0, val + 40))
        return np.where(on[..., None], base, light)
    if cls == _WIRE:
        f = 1.0 + rng.uniform(-0.05, 0.05, dx.shape).astype(_F32)
        return base * f[..., None]
    f = rng.uniform(0.55, 1.15, dx.shape).astype(_F32)
    return base * f[..., None]


def _finish(rng: np.random.Generator, img: np.ndarray, shifted: bool) -> np.ndarray:
    """Apply lighting (shifted domain), blur and noise; return uint8 RGB."""
    h, w = img.shape[:2]
    if shifted:
        yy, xx = np.mgrid[0:h, 0:w].astype(_F32)
        theta = rng.uniform(0, 2 * np.pi)
        ramp = (xx * np.cos(theta) + yy * np.sin(theta)) / max(h, w)
        ramp -= ramp.mean()
        light = 0.95 + rng.uniform(0.5, 0.8) * ramp
        gains = np.array(
            [rng.uniform(1.05, 1.15), rng.uniform(0.9, 1.0), rng.uniform(0.62, 0.75)], _F32
        )
        img = img * light[..., None] * gains * rng.uniform(0.8, 0.95) + rng.uniform(10, 25)
        sigma_blur, sigma_noise = rng.uniform(1.0, 1.4), rng.uniform(7.0, 11.0)
    else:
        sigma_blur, sigma_noise = rng.uniform(0.5, 0.9), rng.uniform(1.5, 3.5)
    img = cv2.GaussianBlur(img, (0, 0), sigma_blur)
    img += rng.standard_normal(img.shape, dtype=_F32) * _F32(sigma_noise)
    return np.clip(img, 0, 255).astype(np.uint8)


def _void_border(mask: np.ndarray) -> np.ndarray:
    """Set object pixels that touch a pixel of another label to :data:`VOID`."""
    k = np.ones((3, 3), np.uint8)
    edge = (cv2.dilate(mask, k) != mask) | (cv2.erode(mask, k) != mask)
    out = mask.copy()
    out[edge & (mask != 0)] = VOID
    return out
