"""Heatmap tiles: one class's probability or the entropy of a variant, for the tiles shown.

A :class:`HeatmapSource` computes each tile with the prediction's on-demand API
(``VariantOutput.probability`` / ``entropy`` for the tile's ``Region`` every ``2**level``
pixels), so only what is visible is ever computed, at the resolution it is drawn. The
log-normalizer of each tile (all classes) is kept in a cache of its own, by bytes: switching
to another class then computes that class's scores only, for the visible tiles.

While a prediction is landing, pixels of tiles not landed yet show the preview's map
(upscaled), dimmed like the label overlay's preview.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from app.canvas.tiles import Rect, Tile, TileCache, TileSource
from app.common.render import wrap_argb
from app.state.partial import PartialResult
from core.outputs.render import to_index

__all__ = ["HeatmapSource", "norm_cache"]

NORM_CACHE_MB = 96
"""Budget of the kept log-normalizers (4 bytes per pixel of a tile)."""

_NORMS: TileCache | None = None
_OUTPUT_IDS: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_COUNTER = itertools.count(1)


def norm_cache() -> TileCache:
    """The log-normalizers of heatmap tiles, shared by every heatmap."""
    global _NORMS
    if _NORMS is None:
        _NORMS = TileCache(NORM_CACHE_MB << 20)
    return _NORMS


def _output_id(output: Any) -> int:
    """A number for ``output`` that no other output gets while it lives."""
    uid = _OUTPUT_IDS.get(output)
    if uid is None:
        uid = _OUTPUT_IDS[output] = next(_COUNTER)
    return uid


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread in the calling (GUI) thread: a tile is small work, and an
    OpenMP team contending with the inference thread for two cores spends more time waiting
    than computing."""
    import torch

    n = torch.get_num_threads()
    if n != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if n != 1:
            torch.set_num_threads(n)


class HeatmapSource(TileSource):
    """A variant's class probability (``cls``) or normalized entropy (``cls`` None).

    Args:
        output: The ``VariantOutput``; None with ``partial``: the landing prediction's
            output of ``variant``.
        cls: The class, or None for the entropy.
        table: 256 premultiplied ARGB values (the colormap).
        size: ``(W, H)`` of the image.
        partial: A prediction still landing: its map where tiles landed, the preview's
            (upscaled, at half alpha) elsewhere.
        variant: The variant shown, with ``partial``.
    """

    def __init__(self, output: Any | None, cls: int | None, table: np.ndarray,
                 size: tuple[int, int], partial: PartialResult | None = None,
                 variant: str = "") -> None:
        """A source over ``output``."""
        super().__init__(size)
        self.output = output
        self.cls = cls
        self.table = np.asarray(table, np.uint32)
        self.partial = partial
        self.variant = variant
        self._preview_map: np.ndarray | None = None
        self.norms = norm_cache()

    def _final_output(self) -> Any | None:
        if self.partial is None:
            return self.output
        pred = self.partial.prediction
        return None if pred is None else pred.outputs.get(self.variant)

    def _values(self, out: Any, level: int, rect: Rect, cache_norm: bool) -> np.ndarray:
        from core.inference.results import Region

        x0, y0, x1, y1 = rect
        region, step = Region(y0, x0, y1, x1), 1 << level
        if self.cls is None:
            return out.entropy(region, step)
        key = (_output_id(out), level, x0, y0, x1, y1)
        norm = self.norms.get(key) if cache_norm else None
        if norm is None:
            norm = out.log_normalizer(region, step)
            if cache_norm:
                self.norms.put(key, norm)
        return out.probability(self.cls, region, step, log_normalizer=norm)

    def _preview_values(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray | None:
        part = self.partial
        pv = None if part is None or part.preview is None else part.preview.outputs.get(
            self.variant)
        if pv is None:
            return None
        if self._preview_map is None:
            self._preview_map = pv.entropy() if self.cls is None else pv.probability(self.cls)
        iy, ix = part.preview_at(ys, xs)  # type: ignore[union-attr]
        return self._preview_map[np.ix_(iy, ix)]

    def build(self, level: int, rect: Rect) -> Tile | None:
        """The tile: the map there, colormapped."""
        x0, y0, x1, y1 = rect
        step = 1 << level
        out = self._final_output()
        final: np.ndarray | bool = out is not None
        if self.partial is not None and out is not None:
            final = self.partial.coverage(y0, y1, x0, x1, step)
        with one_thread():
            pv = None
            if final is not True:
                pv = self._preview_values(np.arange(y0, y1, step), np.arange(x0, x1, step))
                if pv is None and final is False:
                    return None
            if final is False:
                values = pv
            else:
                values = self._values(out, level, rect, cache_norm=final is True)
                if final is not True:
                    values = np.where(final, values, pv) if pv is not None else values
        argb = np.take(self.table, to_index(np.ascontiguousarray(values, np.float32)))
        if final is not True:
            dim = (argb >> 1) & np.uint32(0x7F7F7F7F)  # half alpha, premultiplied
            if pv is None:
                dim[...] = 0
            argb = dim if final is False else np.where(final, argb, dim)
        buf = wrap_argb(argb)
        return Tile(buf.image, buf.array)
