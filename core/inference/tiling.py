"""Tiles of a streamed prediction: the grid, the order, and finishing each one as it lands.

A prediction is streamed (:mod:`core.inference.streaming`) in bands of rows; the image is cut
into tiles (bands of rows over the full width) that finish in order. With a region to show
first (the part of the image in view), the tiles that meet it come first, then those below
it, then those above: one stream starts just above the region (far enough up for its first
tile to be exact) and runs down, a second one runs from the top down to the region.

The :class:`Assembler` writes each stream's new fused-map rows into the prediction (cells
already written by another stream are kept: both are exact) and finishes every tile whose
full-resolution pixels only read written cells: labels, confidence and the whole-image sums
are computed there, and the tile is handed to a callback.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from core.inference.results import Prediction, Region, VariantOutput
from core.inference.streaming import Emitted
from core.models.upsampling import RegionUpsampler

__all__ = ["STRIDE", "Assembler", "from_fused", "tile_grid", "tile_order"]

STRIDE = 32
"""Tile edges are multiples of the FCN's output stride."""

TileFn = Callable[[Prediction, Region], None]


def tile_grid(size: tuple[int, int], band: int) -> list[Region]:
    """Bands of ``band`` rows (rounded down to a multiple of :data:`STRIDE`, at least one)
    over the width; one tile when ``band`` covers the image."""
    h, w = size
    band = h if band >= h else max(STRIDE, band // STRIDE * STRIDE)
    return [Region(top, 0, min(h, top + band), w) for top in range(0, h, band)]


def tile_order(tiles: list[Region], first: Region | None) -> list[Region]:
    """The tiles in the order they are computed: those meeting ``first`` (top to bottom),
    then those below it, then those above (all of them top to bottom without a region)."""
    if first is None or first.area == 0:
        return list(tiles)
    meets = [t for t in tiles if t.top < first.bottom and t.bottom > first.top
             and t.left < first.right and t.right > first.left]
    if not meets:
        return list(tiles)
    top = meets[0].top
    below = [t for t in tiles if t not in meets and t.top >= top]
    above = [t for t in tiles if t not in meets and t.top < top]
    return meets + below + above


class Assembler:
    """Fills one prediction's fused maps from streams and finishes its tiles (module doc).

    Args:
        prediction: The prediction, with zero fused maps and labels.
        tiles: Its tiles, in the order they should finish.
        on_tile: Called with the prediction and each tile as it finishes.
    """

    def __init__(self, prediction: Prediction, tiles: list[Region],
                 on_tile: TileFn | None = None) -> None:
        self.prediction = prediction
        self.pending = list(tiles)
        self.total = len(tiles)
        self.on_tile = on_tile
        self.filled = {v: np.zeros(out.fused.shape[1:], dtype=bool)
                       for v, out in prediction.outputs.items()}

    @property
    def done(self) -> bool:
        """Whether every tile is finished."""
        return not self.pending

    def needed(self, tile: Region) -> dict[str, int]:
        """The first fused-map row of each variant that ``tile`` reads."""
        return {v: max(0, out.upsampler.coarse_extent(tile.top, tile.bottom)[0])
                for v, out in self.prediction.outputs.items()}

    def add(self, emitted: list[Emitted], index: int = 0) -> list[Region]:
        """Write the new rows (batch item ``index``); finish the tiles now complete."""
        for e in emitted:
            out = self.prediction.outputs.get(e.variant)
            if out is None:
                continue
            (r0, r1), (c0, c1) = e.rows, e.cols
            filled = self.filled[e.variant][r0:r1, c0:c1]
            new = e.scores[index].to(out.fused.dtype).cpu()
            target = out.fused[:, r0:r1, c0:c1]
            if filled.any():
                new = torch.where(torch.from_numpy(filled), target, new)
            target.copy_(new)
            filled[...] = True
        return self._finish_ready()

    def _ready(self, tile: Region) -> bool:
        for v, out in self.prediction.outputs.items():
            h, w = self.filled[v].shape
            y0, y1 = out.upsampler.coarse_extent(tile.top, tile.bottom)
            x0, x1 = out.upsampler.coarse_extent(tile.left, tile.right)
            if not self.filled[v][max(0, y0):min(h, y1), max(0, x0):min(w, x1)].all():
                return False
        return True

    def _finish_ready(self) -> list[Region]:
        finished = [t for t in self.pending if self._ready(t)]
        for tile in finished:
            self.pending.remove(tile)
            labels = [out.finish(tile) for out in self.prediction.outputs.values()]
            if len(labels) > 1:
                differ = torch.zeros_like(labels[0], dtype=torch.bool)
                for other in labels[1:]:
                    differ |= other != labels[0]
                self.prediction.disagreeing += int(differ.sum())
            self.prediction.finished.append(tile)
            if self.on_tile is not None:
                self.on_tile(self.prediction, tile)
        return finished


def from_fused(fused: dict[str, torch.Tensor], upsamplers: dict[str, RegionUpsampler],
               image_size: tuple[int, int], device: str = "cpu") -> Prediction:
    """A finished prediction of fused score maps ``{variant: (C, h, w)}`` (tests, synthetic
    data): labels, confidence and sums computed as streaming would."""
    outputs = {v: VariantOutput(v, f.float(), upsamplers[v], image_size) for v, f in fused.items()}
    prediction = Prediction(outputs, image_size, device)
    assembler = Assembler(prediction, tile_grid(image_size, 256))
    for filled in assembler.filled.values():
        filled[...] = True
    assembler.add([])
    return prediction
