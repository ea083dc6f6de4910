"""Border reuse, the records: blank-input border bands, the rings read around the image, plans.

A :class:`Blank` keeps a blank input's activations at one layer compressed to their border
bands (a zero slot for the padding, the left band, one interior value, the right band);
:class:`Rings` are the four pieces around the reached part of a layer's input, cut from a
blank; :func:`assemble` puts a layer's computed inner part in the middle of its rings; a
:class:`Plan` holds one input size's geometry and rings. The small index tensors that cut
rings out of blanks are cached here, per device, bounded by entries and bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.inference.runtime.border_geometry import AxisStep, Span
from core.inference.runtime.options import LRUCache, MiB

__all__ = [
    "KEEP_BYTES",
    "SLOTS_BYTES",
    "Blank",
    "Plan",
    "Rings",
    "assemble",
    "compress_blank",
    "shared_caches",
]


@dataclass
class Rings:
    """Blank-input values around the reached part of one layer's input (batch 1).

    ``assemble(inner)`` returns the region the layer reads, ``inner`` in the middle.
    Empty pieces are None.
    """

    top: torch.Tensor | None
    bottom: torch.Tensor | None
    left: torch.Tensor | None
    right: torch.Tensor | None

    def pieces(self) -> list[torch.Tensor | None]:
        """``[top, bottom, left, right]``."""
        return [self.top, self.bottom, self.left, self.right]

    def assemble(self, inner: torch.Tensor) -> torch.Tensor:
        return assemble(inner, *self.pieces())


def assemble(inner: torch.Tensor, top: torch.Tensor | None, bottom: torch.Tensor | None,
             left: torch.Tensor | None, right: torch.Tensor | None) -> torch.Tensor:
    """``inner`` surrounded by the ring pieces (each batch 1, broadcast to the batch)."""
    n = inner.shape[0]

    def cat(parts: list[torch.Tensor | None], dim: int) -> torch.Tensor:
        kept = [p if p is inner or p.shape[0] == n else p.expand(n, -1, -1, -1)
                for p in parts if p is not None]
        if len(kept) == 1:
            return kept[0]
        # torch.cat of a broadcast (stride-0) ring and a channels_last map returns NCHW, which
        # the next convolution would convert back: keep the input's layout.
        fmt = (torch.channels_last if not torch.jit.is_tracing() and n > 1
               and inner.is_contiguous(memory_format=torch.channels_last) else None)
        if fmt is None:
            return torch.cat(kept, dim)
        if torch.is_grad_enabled() and any(p.requires_grad for p in kept):
            return torch.cat(kept, dim).contiguous(memory_format=fmt)  # out= has no autograd
        shape = list(kept[0].shape)
        shape[dim] = sum(p.shape[dim] for p in kept)
        out = torch.empty(shape, dtype=inner.dtype, device=inner.device, memory_format=fmt)
        return torch.cat(kept, dim, out=out)

    mid = cat([left, inner, right], 3)
    return cat([top, mid, bottom], 2)


@dataclass
class Blank:
    """A blank input's activations at one layer output, its border bands only.

    ``values`` is ``(1, C, 1 + el + 1 + er, ...)`` per axis: a zero slot (the padding), the
    left band, one interior position, the right band.
    """

    values: torch.Tensor
    edges: tuple[tuple[int, int], tuple[int, int]]

    def index(self, axis: int, size: int, positions: range) -> torch.Tensor:
        """Slots of ``positions`` (in coordinates shifted by the padding, see ``pad``)."""
        el, er = self.edges[axis]
        return _slots(el, er, size, positions.start, positions.stop, self.values.device)

    def region(self, ys: Span, xs: Span, pad: int, size: tuple[int, int],
               fmt: torch.memory_format) -> torch.Tensor | None:
        (y0, y1), (x0, x1) = ys, xs
        if y1 <= y0 or x1 <= x0:
            return None
        iy = self.index(0, size[0], range(y0 - pad, y1 - pad))
        ix = self.index(1, size[1], range(x0 - pad, x1 - pad))
        out = self.values.index_select(2, iy).index_select(3, ix)
        return out.contiguous(memory_format=fmt)


SLOTS_BYTES = 8 * MiB
"""Bytes of ring index tensors kept (with at most 1024 of them): one is at most the length
of an axis (about 10 KiB at 1024-px tiles; 0.24 MB held all 1024 at 128-256 px)."""

_SLOTS: LRUCache[tuple, torch.Tensor] = LRUCache(1024, max_bytes=SLOTS_BYTES)


def _slots(el: int, er: int, size: int, start: int, stop: int, device: torch.device
           ) -> torch.Tensor:
    """Index into a compressed blank map (see :class:`Blank`) of positions start..stop-1
    of a map of ``size``: 0 outside it (padding), else a band slot or the interior slot."""
    key = (el, er, size, start, stop, str(device))
    cached = _SLOTS.get(key)
    if cached is None:
        with torch.inference_mode(False):  # shared by inference and training calls
            p = torch.arange(start, stop)
            out = torch.full_like(p, 1 + el)
            out = torch.where(p < el, 1 + p, out)
            out = torch.where(p >= size - er, 2 + el + p - (size - er), out)
            out = torch.where((p < 0) | (p >= size), torch.zeros_like(p), out)
            cached = out.to(device)
        _SLOTS.put(key, cached)
    return cached


KEEP_BYTES = 1 * MiB
"""Bytes of band index tensors kept (with at most 256): each holds the few dozen positions
of a map's border bands."""

_KEEP: LRUCache[tuple, torch.Tensor] = LRUCache(256, max_bytes=KEEP_BYTES)


def shared_caches() -> dict[str, LRUCache]:
    """The process-wide index caches (for diagnostics and benchmarks)."""
    return {"border.slots": _SLOTS, "border.keep": _KEEP}


def _keep_index(el: int, er: int, size: int, device: torch.device) -> torch.Tensor:
    """Positions ``0..el`` and ``size-er..size-1`` (the bands and one interior position),
    cached per device: training compresses every step, and building the index on the host
    each time would be a synchronizing copy on a GPU."""
    key = (el, er, size, str(device))
    cached = _KEEP.get(key)
    if cached is None:
        with torch.inference_mode(False):
            keep = [*range(el), el, *range(size - er, size)]
            cached = torch.tensor(keep, dtype=torch.long).to(device)
        _KEEP.put(key, cached)
    return cached


def compress_blank(t: torch.Tensor, edges: tuple[tuple[int, int], tuple[int, int]],
              live: bool = False) -> Blank:
    """Keep a zero slot, the border bands and one interior position per axis (``live``:
    keep the autograd graph, for training)."""
    t = t[:1] if live else t[:1].detach()
    for axis, (el, er) in zip((2, 3), edges, strict=True):
        size = t.shape[axis]
        t = t.index_select(axis, _keep_index(el, er, size, t.device))
        t = torch.cat([torch.zeros_like(t.narrow(axis, 0, 1)), t], axis)
    return Blank(t.contiguous(), edges)


@dataclass
class Plan:
    """One input size: the geometry and, per sparse layer, its input rings.

    Attributes:
        dense_from: Layers from this index on run as they are.
        inputs: ``{layer index: rings of its input}`` for the sparse layers that read a
            neighbourhood (convolutions, pooling).
        taps: ``{layer index: rings of its output}`` for taps the image does not reach
            whole (the heads read all of them).
    """

    steps: list[tuple[AxisStep, AxisStep]]
    dense_from: int
    inputs: dict[int, Rings]
    taps: dict[int, Rings]

    def ring_tensors(self) -> list[torch.Tensor]:
        """Every non-empty ring piece, in a fixed order (layer, then top/bottom/left/right)."""
        out: list[torch.Tensor] = []
        for group in (self.inputs, self.taps):
            for i in sorted(group):
                out += [t for t in group[i].pieces() if t is not None]
        return out

    def structure(self) -> tuple:
        """What a traced graph of the sparse pass depends on (not the sizes)."""
        return (self.dense_from,
                tuple((i, tuple(t is not None for t in r.pieces())) for i, r in
                      sorted(self.inputs.items())),
                tuple((i, tuple(t is not None for t in r.pieces())) for i, r in
                      sorted(self.taps.items())))

