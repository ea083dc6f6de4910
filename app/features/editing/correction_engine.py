"""The editor's computations with the image and the model, run in the correction thread.

Qt-free: the :class:`~app.features.editing.correction_worker.CorrectionWorker` calls these
in its thread (``fcn-correct``) and imports this module on its first job, so scikit-image,
torch and :mod:`core.refine` are not loaded before the window is painted.

* :class:`SuperpixelMap`: SLIC superpixels (:class:`core.annotation.edge_tools.Superpixels`)
  of the image, or on a large image of the part in view (a downscaled copy of it when that
  is still larger than :data:`SP_MAX_PIXELS`), with the superpixel brush and fill in the
  image's coordinates.
* :func:`refine_box`: the mean-field CRF (:func:`core.refine.crf.refine`) on the mask, in
  tiles of :data:`REFINE_TILE` pixels (each read with a margin), so a large image needs a
  tile's memory, and cancellable between tiles.
* :class:`ClickEngine`: click and scribble correction (:class:`core.refine.clicks.ClickCorrector`)
  on the image's trunk features, cached per image, model and box; its own CPU copy of the
  model, loaded from the checkpoint. ``prepare`` computes the features (and warms the
  optimizer up once) when the tool is chosen, so the first click costs what the next do.
* :func:`preview_images`: what the canvas draws of a preview (the new labels over the image,
  the changed pixels outlined), as ARGB arrays over the changed pixels' box.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Box = tuple[int, int, int, int]
"""``(x0, y0, x1, y1)``, ends exclusive, in image pixels."""
Check = Callable[[], None]
"""Raises ``core.errors.Cancelled`` when the job was cancelled."""

SP_MAX_PIXELS = 1 << 18
"""Superpixels are computed on at most this many pixels (about 1.8 s at 1024² on two busy
cores, 0.3-0.7 s at 512²): the whole image up to it, else the part in view."""
SP_MARGIN = 0.25
"""On a large image the superpixels cover the part in view plus this fraction of it."""
REFINE_TILE = 512
"""The CRF runs on tiles of this many pixels a side (plus a margin): about 85 MB each."""
CLICK_MAX_SIDE = 1024
"""Click correction runs on the image up to this size, else on a square of it."""
MARK_RGB = (0, 255, 255)
"""The colour the changed pixels of a preview are outlined in (cyan)."""


def boundary(labels: np.ndarray) -> np.ndarray:
    """Pixels of ``labels`` with a 4-neighbour of another label (bool, same shape)."""
    out = np.zeros(labels.shape, bool)
    dx = labels[:, 1:] != labels[:, :-1]
    dy = labels[1:] != labels[:-1]
    out[:, 1:] |= dx
    out[:, :-1] |= dx
    out[1:] |= dy
    out[:-1] |= dy
    return out


def _argb(rgb: Sequence[int], alpha: int = 255) -> int:
    r, g, b = (int(c) * alpha // 255 for c in rgb)
    return (alpha << 24) | (r << 16) | (g << 8) | b


@dataclass
class SuperpixelMap:
    """Superpixels of the pixels in ``box``, computed on a copy ``scale`` times smaller.

    Attributes:
        superpixels: The core's ``Superpixels`` of the copy.
        box: The image pixels covered.
        size: The superpixel size asked for (pixels of the copy).
        edges: ``(h, w)`` uint32 ARGB of the copy: superpixel boundaries, faint white.
        thread: The thread that computed it.
    """

    superpixels: Any
    box: Box
    size: int
    edges: np.ndarray = field(repr=False)
    thread: str = ""

    @property
    def scale(self) -> float:
        """Image pixels per pixel of the copy (1: full resolution)."""
        return (self.box[2] - self.box[0]) / self.superpixels.shape[1]

    def covers(self, rect: Box) -> bool:
        """Whether the map holds every pixel of ``rect``."""
        x0, y0, x1, y1 = self.box
        return x0 <= rect[0] and y0 <= rect[1] and rect[2] <= x1 and rect[3] <= y1

    def contains(self, x: float, y: float) -> bool:
        """Whether pixel ``(x, y)`` is in the map."""
        x0, y0, x1, y1 = self.box
        return x0 <= x < x1 and y0 <= y < y1

    def _to_copy(self, points: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
        x0, y0, _, _ = self.box
        h, w = self.superpixels.shape
        sx, sy = w / (self.box[2] - x0), h / (self.box[3] - y0)
        return [(min(w - 1.0, max(0.0, (px - x0) * sx)), min(h - 1.0, max(0.0, (py - y0) * sy)))
                for px, py in points]

    def _to_image(self, region: Any) -> Any:
        from core.annotation.labels import BBox, Region

        if region.count == 0:
            return region
        x0, y0, x1, y1 = self.box
        if self.superpixels.shape == (y1 - y0, x1 - x0):  # full resolution: shift only
            b = region.bbox
            return Region(BBox(b.x0 + x0, b.y0 + y0, b.x1 + x0, b.y1 + y0), region.mask)
        h, w = self.superpixels.shape
        bw, bh = x1 - x0, y1 - y0
        b = region.bbox
        # image pixels whose copy pixel (floor(X * w / bw)) lies in the region's box
        ix0, ix1 = -(-b.x0 * bw // w), -(-b.x1 * bw // w)
        iy0, iy1 = -(-b.y0 * bh // h), -(-b.y1 * bh // h)
        cols = np.arange(ix0, ix1) * w // bw - b.x0
        rows = np.arange(iy0, iy1) * h // bh - b.y0
        mask = region.mask[rows[:, None], cols[None, :]]
        return Region(BBox(ix0 + x0, iy0 + y0, ix1 + x0, iy1 + y0), np.ascontiguousarray(mask))

    def brush(self, points: Sequence[Sequence[float]], radius: float) -> Any:
        """The superpixels a brush of ``radius`` dragged along ``points`` touches (a core
        ``Region`` in image pixels)."""
        from core.annotation.edge_tools import superpixel_brush

        return self._to_image(superpixel_brush(self.superpixels, self._to_copy(points),
                                               radius / self.scale))

    def fill(self, x: float, y: float, tolerance: float) -> Any:
        """The superpixel under ``(x, y)`` and its like-coloured neighbours (a ``Region``)."""
        from core.annotation.edge_tools import superpixel_fill

        return self._to_image(superpixel_fill(self.superpixels, self._to_copy([(x, y)])[0],
                                              tolerance=tolerance))


def warm_up() -> None:
    """Import what the superpixels need (scikit-image's SLIC: about 0.6 s, holding the GIL
    in bursts of up to 0.3 s), so the first superpixel tool does not stall the window."""
    import scipy.sparse.csgraph  # noqa: F401
    import skimage.segmentation.slic_superpixels  # noqa: F401

    import core.annotation.edge_tools  # noqa: F401


def superpixel_box(shape: tuple[int, int], visible: Box | None) -> Box:
    """The pixels superpixels are computed on: the whole image up to :data:`SP_MAX_PIXELS`,
    else the part in view with a margin."""
    h, w = shape
    if h * w <= SP_MAX_PIXELS or visible is None:
        return 0, 0, w, h
    x0, y0, x1, y1 = visible
    mx, my = round((x1 - x0) * SP_MARGIN), round((y1 - y0) * SP_MARGIN)
    return max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)


def compute_superpixels(rgb: np.ndarray, box: Box, size: int) -> SuperpixelMap:
    """Superpixels of ``rgb[box]`` (downscaled to at most :data:`SP_MAX_PIXELS`)."""
    import cv2

    from core.annotation.edge_tools import Superpixels

    x0, y0, x1, y1 = box
    crop = rgb[y0:y1, x0:x1]
    factor = math.sqrt(crop.shape[0] * crop.shape[1] / SP_MAX_PIXELS)
    if factor > 1:
        size_wh = (max(1, round(crop.shape[1] / factor)), max(1, round(crop.shape[0] / factor)))
        crop = cv2.resize(crop, size_wh, interpolation=cv2.INTER_AREA)
    sp = Superpixels(np.ascontiguousarray(crop), size=size)
    edges = np.where(boundary(sp.labels), np.uint32(_argb((255, 255, 255), 90)), np.uint32(0))
    return SuperpixelMap(sp, box, size, edges.astype(np.uint32))


def snap_points(rgb: np.ndarray, points: Sequence[Sequence[float]], radius: float = 6.0
                ) -> np.ndarray:
    """:func:`core.annotation.edge_tools.snap_polygon` on a crop around the polygon (its
    box, the snap radius and the live wire's margin): ``(N, 2)`` points in the image."""
    from core.annotation.edge_tools import snap_polygon

    pts = np.asarray(points, np.float64)
    h, w = rgb.shape[:2]
    span = float(max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1]))) if len(pts) else 0.0
    margin = math.ceil(radius + max(8.0, 0.25 * span) + 8)
    x0 = max(0, math.floor(pts[:, 0].min()) - margin)
    y0 = max(0, math.floor(pts[:, 1].min()) - margin)
    x1 = min(w, math.ceil(pts[:, 0].max()) + margin + 1)
    y1 = min(h, math.ceil(pts[:, 1].max()) + margin + 1)
    crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    offset = np.array([x0, y0], np.float64)
    return snap_polygon(crop, pts - offset, radius=radius) + offset


def refine_box(rgb: np.ndarray, labels: np.ndarray, num_classes: int, box: Box, *,
               config: Any = None, tile: int = REFINE_TILE, check: Check = lambda: None,
               report: Callable[[float], None] = lambda _f: None
               ) -> tuple[np.ndarray, np.ndarray]:
    """The CRF-refined labels of ``box`` and the changed pixels there (both box-sized).

    Tiles of ``tile`` pixels run :func:`core.refine.crf.refine` on a crop with a margin
    (the CRF's reach over every iteration, the rough mask's boundary band, and one more
    update's reach), limited to the tile, so the result matches one pass over the box
    while memory stays a tile's.
    """
    from core.annotation.labels import BBox
    from core.refine.crf import CRFConfig, refine

    cfg = config or CRFConfig()
    h, w = labels.shape
    x0, y0, x1, y1 = box
    margin = cfg.reach * (cfg.iterations + 1) + math.ceil(cfg.boundary_band) + 2
    after = labels[y0:y1, x0:x1].copy()
    tiles = [(tx, ty, min(tx + tile, x1), min(ty + tile, y1))
             for ty in range(y0, y1, tile) for tx in range(x0, x1, tile)]
    for k, (tx0, ty0, tx1, ty1) in enumerate(tiles):
        check()
        cx0, cy0 = max(0, tx0 - margin), max(0, ty0 - margin)
        cx1, cy1 = min(w, tx1 + margin), min(h, ty1 + margin)
        done = refine(np.ascontiguousarray(rgb[cy0:cy1, cx0:cx1]),
                      labels=labels[cy0:cy1, cx0:cx1], num_classes=num_classes,
                      region=BBox(tx0 - cx0, ty0 - cy0, tx1 - cx0, ty1 - cy0), config=cfg)
        after[ty0 - y0:ty1 - y0, tx0 - x0:tx1 - x0] = \
            done.labels[ty0 - cy0:ty1 - cy0, tx0 - cx0:tx1 - cx0]
        report((k + 1) / len(tiles))
    return after, after != labels[y0:y1, x0:x1]


@dataclass
class PreviewImages:
    """What the canvas draws of a preview, over the box ``(x, y)`` + the arrays' size.

    Attributes:
        x: Left of the box (image pixels).
        y: Top of the box.
        after: ``(h, w)`` uint32 ARGB: the new labels over the image, as the mask layer
            would show them, opaque on the changed pixels (transparent elsewhere).
        marks: ``(h, w)`` uint32 ARGB: the changed pixels' outline.
    """

    x: int
    y: int
    after: np.ndarray = field(repr=False)
    marks: np.ndarray = field(repr=False)


def preview_images(rgb: np.ndarray, labels: np.ndarray, changed: np.ndarray, origin:
                   tuple[int, int], lut: np.ndarray, opacity: float) -> PreviewImages | None:
    """The preview of ``labels`` where ``changed`` (both over the box at ``origin`` of the
    image ``rgb``), colored with the mask layer's ``lut`` at its ``opacity``; None when
    nothing changed."""
    rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
    if rows.size == 0:
        return None
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    sel = changed[r0:r1, c0:c1]
    ox, oy = origin
    image = rgb[oy + r0:oy + r1, ox + c0:ox + c1].astype(np.float32)
    color = lut[labels[r0:r1, c0:c1]]
    alpha = ((color >> 24) & 255).astype(np.float32)[..., None] / 255 * float(opacity)
    premul = np.stack([(color >> s) & 255 for s in (16, 8, 0)], -1).astype(np.float32)
    mixed = (image * (1 - alpha) + premul * float(opacity)).clip(0, 255).astype(np.uint32)
    after = (np.uint32(255) << 24) | (mixed[..., 0] << 16) | (mixed[..., 1] << 8) | mixed[..., 2]
    after = np.where(sel, after, np.uint32(0)).astype(np.uint32)
    inner = np.pad(sel, 1)
    edge = sel & ~(inner[:-2, 1:-1] & inner[2:, 1:-1] & inner[1:-1, :-2] & inner[1:-1, 2:])
    marks = np.where(edge, np.uint32(_argb(MARK_RGB)), np.uint32(0)).astype(np.uint32)
    return PreviewImages(ox + c0, oy + r0, np.ascontiguousarray(after), marks)


def click_box(shape: tuple[int, int], x: float, y: float, side: int = CLICK_MAX_SIDE) -> Box:
    """The pixels click correction runs on: the whole image up to ``side`` pixels, else a
    ``side`` square around ``(x, y)`` aligned to the trunk's stride (32)."""
    h, w = shape
    if max(h, w) <= side:
        return 0, 0, w, h

    def span(c: float, n: int) -> tuple[int, int]:
        if n <= side:
            return 0, n
        start = min(max(0, round(c - side / 2)), n - side)
        start = start // 32 * 32
        return start, min(n, start + side)

    x0, x1 = span(x, w)
    y0, y1 = span(y, h)
    return x0, y0, x1, y1


class ClickEngine:
    """Click correction of one image at a time, on its cached trunk features.

    Keeps one CPU copy of the model (another model id loads the other), the trunk features
    of the last :data:`FEATURES_KEPT` (image, model, box) and the corrector of the last one
    (its accepted adaptation is kept for the next click on that image).
    """

    FEATURES_KEPT = 3

    def __init__(self) -> None:
        """Hold nothing yet."""
        self._model: tuple[str, Any, Any] | None = None
        self._features: OrderedDict[tuple, Any] = OrderedDict()
        self._key: tuple | None = None
        self._corrector: Any | None = None
        self._last: Any | None = None
        self._warm = False

    def model(self, checkpoint: str, model_id: str) -> tuple[Any, Any]:
        """``(FCN, ModelInfo)`` on the CPU (the corrector's tensors are the CPU's)."""
        if self._model is None or self._model[0] != model_id:
            from core.checkpoints.checkpoint import load_checkpoint

            self.forget()
            model, info = load_checkpoint(checkpoint, device="cpu")
            self._model = (model_id, model.eval(), info)
        return self._model[1], self._model[2]

    def forget(self) -> None:
        """Drop the model, the features and the corrector."""
        self._model, self._key, self._corrector, self._last = None, None, None, None
        self._features.clear()

    def _features_of(self, model: Any, info: Any, rgb: np.ndarray, key: tuple) -> tuple[Any, bool]:
        """The cached trunk features of ``key`` (computed when missing: True)."""
        first = key not in self._features
        if first:
            from core.insight.features import image_tensor, trunk_features

            self._features[key] = trunk_features(model, image_tensor(rgb, info.preprocessing))
            while len(self._features) > self.FEATURES_KEPT:
                self._features.popitem(last=False)
        self._features.move_to_end(key)
        return self._features[key], first

    def prepare(self, a: dict[str, Any], check: Check) -> bool:
        """Get ready for the first click: the model's CPU copy, the image's trunk features
        over ``a['box']`` (None: not known yet) and, once per engine, one throwaway
        optimization (torch's first backward pass costs about 1.5 s more than the next).
        True when something was computed."""
        from core.refine.clicks import Click, ClickConfig, ClickCorrector

        model, info = self.model(a["checkpoint"], a["model_id"])
        box = a.get("box")
        if box is None and self._warm:
            return False
        check()
        did = False
        if box is not None:
            x0, y0, x1, y1 = box
            rgb = np.ascontiguousarray(a["rgb"][y0:y1, x0:x1])
            features, did = self._features_of(model, info, rgb, (a["image_key"], a["model_id"],
                                                                 tuple(box)))
        else:  # (a large image: the box follows the first click) warm up on a small image
            rgb = np.zeros((64, 64, 3), np.uint8)
            from core.insight.features import image_tensor, trunk_features

            features = trunk_features(model, image_tensor(rgb, info.preprocessing))
        if not self._warm:
            check()
            h, w = rgb.shape[:2]
            corrector = ClickCorrector(model, features, np.zeros((h, w), np.uint8),
                                       ClickConfig(), image=rgb)
            corrector.add(Click(w // 2, h // 2, min(1, len(info.class_names) - 1), True))
            corrector.preview()
            self._warm = did = True
        return did

    def preview(self, a: dict[str, Any], check: Check) -> dict[str, Any]:
        """Add the job's hint (``a['hint']``: a core ``Click`` or ``Scribble`` in image
        pixels) and preview; the result's arrays are over ``a['box']``."""
        from core.refine.clicks import Click, ClickConfig, ClickCorrector, Scribble

        model, info = self.model(a["checkpoint"], a["model_id"])
        x0, y0, x1, y1 = box = a["box"]
        rgb = np.ascontiguousarray(a["rgb"][y0:y1, x0:x1])
        labels = np.ascontiguousarray(a["labels"][y0:y1, x0:x1])
        key = (a["image_key"], a["model_id"], tuple(box))
        features, first = self._features_of(model, info, rgb, key)
        check()
        if self._key != key or self._corrector is None:
            self._corrector = ClickCorrector(model, features, labels, ClickConfig(), image=rgb)
            self._key = key
        elif not np.array_equal(self._corrector.current, labels):
            self._corrector.set_current(labels)
        hint = a["hint"]
        if isinstance(hint, Click):
            hint = Click(hint.x - x0, hint.y - y0, hint.label, hint.positive)
        else:
            hint = Scribble(tuple((px - x0, py - y0) for px, py in hint.points), hint.label,
                            hint.positive, hint.radius)
        self._corrector.add(hint)
        correction = self._corrector.preview()
        self._last = correction
        return {"box": box, "labels": correction.labels, "region": correction.region,
                "iterations": correction.iterations, "seconds": correction.seconds,
                "first": first}

    def accept(self) -> None:
        """Keep the last preview's adaptation (its region went into the mask)."""
        if self._corrector is not None and self._last is not None:
            self._corrector.accept(self._last)
        self._last = None

    def reject(self) -> None:
        """Forget the hints since the last accept."""
        if self._corrector is not None:
            self._corrector.reject()
        self._last = None
