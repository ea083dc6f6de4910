"""One layer of a stream (:mod:`core.inference.streaming`): what it computes from the inputs
it has, in *valid* mode, and the ring of input rows it keeps between bands.

Zero padding is added only where the input really ends (the image's own edges); elsewhere a
layer's output stops where its inputs stop, so what a layer computes is what the untiled
network computes there. Convolutions (stride 1) and max pooling (ceil mode, no padding) are
followed; ReLU is fused into the next layer's intake.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from core.models.geometry import layer_params, output_length

__all__ = ["NotStreamable", "Span", "Stage", "layer_kind", "valid_span"]

Span = tuple[int, int]
"""A half-open interval ``[lo, hi)`` of positions along one axis of a layer's map."""


class NotStreamable(ValueError):
    """The model has a layer whose geometry streaming does not follow."""


def layer_kind(layer: nn.Module) -> str:
    if isinstance(layer, nn.Conv2d):
        if layer.stride not in (1, (1, 1)) or layer.dilation not in (1, (1, 1)) or (
            layer.padding_mode != "zeros" or isinstance(layer.padding, str)
        ):
            raise NotStreamable(f"{layer} (stride, dilation or padding mode)")
        return "conv"
    if isinstance(layer, nn.MaxPool2d):
        if layer.padding not in (0, (0, 0)) or layer.dilation not in (1, (1, 1)):
            raise NotStreamable(f"{layer} (padding or dilation)")
        return "pool"
    if isinstance(layer, (nn.ReLU, nn.Dropout, nn.Identity)):
        return "point"
    raise NotStreamable(f"unsupported trunk layer {type(layer).__name__}")


def valid_span(layer: nn.Module, n_in: int, given: Span) -> tuple[Span, Span, Span]:
    """What ``layer`` computes along one axis from input positions ``given`` of ``n_in``.

    Returns:
        ``(output, used, pad)``: the outputs it determines, the input positions they read
        (a part of ``given``) and the zeros to add before and after them (its padding, only
        where the input really ends).
    """
    kind = layer_kind(layer)
    lo, hi = given
    if kind == "point" or hi <= lo:
        return (lo, hi), (lo, hi), (0, 0)
    k, s, p = layer_params(layer)
    n_out = output_length(layer, n_in)
    if kind == "conv":
        before, after = (p if lo == 0 else 0), (p if hi == n_in else 0)
        out = (lo - before + p, max(lo - before + p, hi + after - k + 1 + p))
        return out, (lo, hi), (before, after)
    o_lo = -(-lo // s)
    o_hi = n_out if hi == n_in else max(o_lo, (hi - k) // s + 1)
    return (o_lo, o_hi), (s * o_lo, min(hi, max(s * o_lo, s * (o_hi - 1) + k))), (0, 0)


class Stage:
    """One convolution or pooling layer of a stream, with the ReLU before it fused into
    its intake, and a ring of the input rows its next outputs still read.

    New rows are written (through the ReLU) into the ring after the rows kept from the last
    call, so the layer reads one contiguous block: no concatenation, no separate ReLU pass.
    """

    def __init__(self, layer: nn.Module, relu: bool, n_rows: int, n_cols: int, cols: Span,
                 min_rows: int) -> None:
        self.layer, self.kind, self.relu = layer, layer_kind(layer), relu
        self.k, self.s, self.p = layer_params(layer)
        self.n_in, self.n_out = n_rows, output_length(layer, n_rows)
        out, used, pad = valid_span(layer, n_cols, cols)
        self.cols_out = out
        self.col_slice = slice(used[0] - cols[0], used[1] - cols[0])
        self.col_pad = pad
        self.min_rows = min_rows
        self.max_rows = 1 << 30  # outputs per piece (the stream bounds it by its band)
        self.ring: torch.Tensor | None = None
        self.start = 0  # ring row of the first buffered row
        self.count = 0  # buffered rows
        self.lo = 0  # the input map's row index of the first buffered row (< 0: padding)
        self.next_out: int | None = None

    def _room(self, like: torch.Tensor, rows: int) -> torch.Tensor:
        """The ring, with ``rows`` free rows after the buffered ones."""
        need = self.count + rows
        ring = self.ring
        kept = None if ring is None else ring[:, :, self.start:self.start + self.count]
        # (re)allocated when too small, or far too large (after a first band with padding)
        if ring is None or ring.shape[2] < need or ring.shape[2] > 2 * (need + self.k):
            new = torch.empty((like.shape[0], like.shape[1], need + self.k, like.shape[3]),
                              dtype=like.dtype, device=like.device, memory_format=_layout(like))
            if kept is not None and self.count:
                new[:, :, :self.count].copy_(kept)
            self.ring, self.start = new, 0
        elif self.start + need > ring.shape[2]:
            if self.count:
                ring[:, :, :self.count].copy_(kept.clone() if self.start < self.count else kept)
            self.start = 0
        assert self.ring is not None
        return self.ring[:, :, self.start + self.count:self.start + need]

    def _take(self, rows: torch.Tensor | None, zeros: int, like: torch.Tensor) -> None:
        """Buffer ``rows`` (through the ReLU), then ``zeros`` zero rows."""
        if rows is not None and rows.shape[2]:
            slot = self._room(rows, rows.shape[2])
            if self.relu:
                torch.clamp_min(rows, 0, out=slot)
            else:
                slot.copy_(rows)
            self.count += rows.shape[2]
        if zeros:
            self._room(like, zeros).zero_()
            self.count += zeros

    def push(self, rows: torch.Tensor | None, lo: int, ended: bool
             ) -> Iterator[tuple[torch.Tensor | None, int, bool]]:
        """Add input rows ``lo ..`` (``ended``: the input's last ones); yield the new output
        rows in pieces of at most :attr:`max_rows`, each as ``(rows, index of the first,
        whether it is the output's last)`` (``(None, ., True)`` when the input ended and no
        output was left)."""
        if rows is not None:
            rows = rows[..., self.col_slice]
        like = rows if rows is not None else self.ring
        if like is None:
            if ended:
                yield None, 0, True
            return
        pad = self.p if self.kind == "conv" else 0
        if self.ring is None:
            self.lo = lo
            if lo == 0 and pad:
                self.lo = -pad
                self._take(None, pad, like)
        self._take(rows, pad if ended else 0, like)
        hi = self.lo + self.count
        if self.kind == "conv":
            first = self.lo + self.p if self.next_out is None else self.next_out
            last = min(self.n_out, hi - self.k + 1 + self.p)
        else:
            first = -(-self.lo // self.s) if self.next_out is None else self.next_out
            last = self.n_out if ended else min(self.n_out, (hi - self.k) // self.s + 1)
        if last > first and (ended or last - first >= self.min_rows):
            assert self.ring is not None
            for a in range(first, last, self.max_rows):
                b = min(last, a + self.max_rows)
                used = ((a - self.p, b - self.p + self.k - 1) if self.kind == "conv"
                        else (self.s * a, min(hi, self.s * (b - 1) + self.k)))
                block = self.ring[:, :, self.start + used[0] - self.lo:
                                  self.start + used[1] - self.lo]
                yield self._apply(block), a, ended and b == last
        else:
            last = first
            if ended:
                yield None, first, True
        self.next_out = last
        keep_from = last - self.p if self.kind == "conv" else self.s * last
        cut = min(self.count, max(0, keep_from - self.lo))
        self.start, self.count, self.lo = self.start + cut, self.count - cut, self.lo + cut
        if ended:
            self.ring, self.count = None, 0

    def _apply(self, block: torch.Tensor) -> torch.Tensor:
        if self.kind == "pool":
            return self.layer(block)
        before, after = self.col_pad
        if before != after:
            block = F.pad(block, (before, after))
            before = 0
        w, b = self.layer.weight, self.layer.bias
        return F.conv2d(block, w, b, 1, (0, before), 1, self.layer.groups)


def _layout(t: torch.Tensor) -> torch.memory_format:
    """channels_last when ``t`` is laid out so, else contiguous."""
    if t.dim() == 4 and t.shape[1] > 1 and not t.is_contiguous() and t.is_contiguous(
            memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format
