"""A prediction still landing: its preview, the tiles finished so far, and where they are.

While a large image is segmented the worker sends a preview (the model on a downscaled
copy) and then the streamed prediction's tiles as they finish. A :class:`PartialResult`
holds both for one document and model; the views draw final pixels where tiles landed and
the preview, upscaled and marked, elsewhere. A cancelled prediction keeps what landed.
Qt-free (numpy only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

Box = tuple[int, int, int, int]
"""``(top, left, bottom, right)``: image pixels, half-open (the core's ``Region`` order)."""


@dataclass
class PartialResult:
    """A prediction of one image by one model, in progress or stopped part way.

    Attributes:
        size: ``(H, W)`` of the image.
        preview: The prediction of a downscaled copy (``core.inference.Prediction``), or None.
        prediction: The streamed prediction whose tiles land (final inside :attr:`regions`
            only), or None before the first tile.
        regions: The landed tiles, in the order they landed.
        stopped: Whether the prediction was cancelled (or failed) after these tiles.
    """

    size: tuple[int, int]
    preview: Any | None = None
    prediction: Any | None = None
    regions: list[Box] = field(default_factory=list)
    stopped: bool = False
    _rows: np.ndarray | None = field(default=None, repr=False)
    _bands: bool = field(default=True, repr=False)

    # ------------------------------------------------------------------ landing
    def add(self, prediction: Any, regions: list[Box]) -> None:
        """Tiles ``regions`` of ``prediction`` landed."""
        self.prediction = prediction
        for box in regions:
            box = tuple(int(v) for v in box)
            self.regions.append(box)  # type: ignore[arg-type]
            top, left, bottom, right = box
            if left <= 0 and right >= self.size[1]:  # full-width bands: a row mask
                if self._rows is None:
                    self._rows = np.zeros(self.size[0], bool)
                self._rows[max(0, top):bottom] = True
            else:
                self._bands = False

    @property
    def landed_pixels(self) -> int:
        """Image pixels with final results (tiles do not overlap)."""
        return sum(max(0, b - t) * max(0, r - left) for t, left, b, r in self.regions)

    @property
    def fraction(self) -> float:
        """Share of the image with final results."""
        h, w = self.size
        return min(1.0, self.landed_pixels / max(1, h * w))

    @property
    def complete(self) -> bool:
        """Whether every pixel is final."""
        return self.prediction is not None and self.landed_pixels >= self.size[0] * self.size[1]

    # ------------------------------------------------------------------ where it is final
    def coverage(self, y0: int, y1: int, x0: int, x1: int, step: int = 1) -> np.ndarray | bool:
        """Which pixels of rows ``y0..y1-1`` x columns ``x0..x1-1``, every ``step``-th, are
        final: True or False when all or none are, else a bool array of the sampled shape."""
        return self.coverage_at(np.arange(y0, y1, step), np.arange(x0, x1, step))

    def coverage_at(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray | bool:
        """Which pixels at image rows ``ys`` x columns ``xs`` are final (as :meth:`coverage`)."""
        if not len(ys) or not len(xs) or not self.regions:
            return False
        if self._bands and self._rows is not None:
            rows = self._rows[ys]
            if rows.all():
                return True
            if not rows.any():
                return False
            return np.broadcast_to(rows[:, None], (len(ys), len(xs)))
        mask = np.zeros((len(ys), len(xs)), bool)
        for top, left, bottom, right in self.regions:
            mask |= ((ys >= top) & (ys < bottom))[:, None] & ((xs >= left) & (xs < right))
        if mask.all():
            return True
        return mask if mask.any() else False

    def pending_boxes(self) -> list[Box]:
        """The parts of the image not final yet, as full-width bands (the core's tiles are
        full-width bands; with other tiles, the whole image until it is complete)."""
        h, w = self.size
        if self.complete:
            return []
        if self._rows is None or not self._bands:
            return [(0, 0, h, w)]
        out: list[Box] = []
        edges = np.flatnonzero(np.diff(np.r_[True, self._rows, True].astype(np.int8)))
        for a, b in zip(edges[::2], edges[1::2], strict=False):
            out.append((int(a), 0, int(b), w))
        return out

    def preview_at(self, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows and columns of the preview pixels under image rows ``ys`` x columns ``xs``
        (nearest)."""
        ph, pw = self.preview.image_size
        h, w = self.size
        iy = np.minimum(((ys + 0.5) * (ph / h)).astype(np.intp), ph - 1)
        ix = np.minimum(((xs + 0.5) * (pw / w)).astype(np.intp), pw - 1)
        return iy, ix

    @property
    def nbytes(self) -> int:
        """Bytes held by the preview and the landing prediction."""
        return sum(int(getattr(p, "nbytes", 0)) for p in (self.preview, self.prediction))
