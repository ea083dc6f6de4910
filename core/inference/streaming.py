"""Exact streaming of an FCN over an image: bands of rows through every layer, none twice.

The network runs in *valid* mode: each layer computes exactly the outputs that the inputs it
has determine. Zero padding (conv1_1's 100 pixels, the 3x3 convolutions' 1) is added only
where the image itself ends; elsewhere a layer's output simply stops where its inputs stop.
So whatever a stream computes is what the untiled network computes there (up to the order
of floating-point sums), whatever the band height or column window.

A :class:`Stream` takes the image a band of rows at a time. Each layer keeps the last input
rows its next outputs still read (``k - 1`` for a convolution, the rest of a pooling
window), so no row is computed twice: the work is the untiled network's, with a band's
activations in memory instead of the image's. The three tapped maps (pool3, pool4, fc7) are
kept as far back as the heads read them, and :meth:`~core.models.fcn.FCN.heads` (with
:class:`~core.models.upsampling.DeferredUpsampling`) runs on each new window of fc7 rows,
overlapping the previous one by what the skip deconvolutions read, giving new rows of the
fused score maps at stride 32, 16 and 8: what a prediction stores.

A stream may start at any row (its first valid outputs come later: the warm-up is part of
the receptive field) and covers a window of columns, all of them by default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from core.inference.stages import NotStreamable, Span, Stage, layer_kind, valid_span
from core.models.fcn import FCN
from core.models.geometry import layer_params, output_length
from core.models.upsampling import FINAL_UPSAMPLERS, DeferredUpsampling
from core.variants import VARIANTS

__all__ = ["Emitted", "NotStreamable", "Stream", "StreamGeometry", "run_stream", "valid_span"]

TAPS: tuple[str, ...] = ("pool3", "pool4", "fc7")
MIN_POSITIONS = 1 << 15
MIN_ROWS = 8
"""A layer waits for enough input to give at least ``MIN_POSITIONS`` outputs or
``MIN_ROWS`` rows per call (the end excepted): deep, narrow layers run every few bands
instead of on one row at a time, which costs per call."""


@dataclass(frozen=True)
class Emitted:
    """New rows of one fused score map.

    Attributes:
        variant: "32s", "16s" or "8s".
        scores: ``(N, C, h, w)`` float32, at map rows ``rows`` and columns ``cols``.
    """

    variant: str
    scores: torch.Tensor
    rows: Span
    cols: Span


class StreamGeometry:
    """The full-image sizes of every map of an FCN for one image size (rows, columns)."""

    def __init__(self, model: FCN, height: int, width: int) -> None:
        self.model = model
        self.layers = [getattr(model, name) for name in model._trunk]
        for layer in self.layers:
            layer_kind(layer)
        self.height, self.width = height, width
        self.rows = self._sizes(height)
        self.cols = self._sizes(width)
        self.skips = [(layer_params(getattr(model, n))[:2]) for n in ("upscore2", "upscore_pool4")]

    def _sizes(self, n: int) -> list[int]:
        sizes = [n]
        for layer in self.layers:
            sizes.append(output_length(layer, sizes[-1]))
        return sizes

    def tap(self, name: str) -> int:
        """Index (into :attr:`rows`) of a tapped map (its layer's output)."""
        return self.model._trunk.index("drop7" if name == "fc7" else name) + 1

    def fused(self, axis_sizes: list[int]) -> dict[str, int]:
        """Lengths of the three fused maps along an axis (the heads' deconvolutions)."""
        (k2, s2), (k4, s4) = self.skips
        n32 = axis_sizes[self.tap("fc7")]
        n16 = s2 * (n32 - 1) + k2
        return {"32s": n32, "16s": n16, "8s": s4 * (n16 - 1) + k4}

    def origins(self, a: int) -> dict[str, int]:
        """Each fused map's position of the heads' first output on fc7 positions ``a ..``."""
        (_, s2), (_, s4) = self.skips
        return {"32s": a, "16s": s2 * a, "8s": s2 * s4 * a}

    def window(self, a: int, b: int, sizes: list[int]) -> dict[str, Span]:
        """The fused-map positions the heads determine from fc7 positions ``[a, b)`` along
        an axis of ``sizes`` (:attr:`rows` or :attr:`cols`): near a window's inner edges the
        skip deconvolutions miss inputs."""
        (k2, s2), (k4, s4) = self.skips
        if a == 0:
            lo = dict.fromkeys(VARIANTS, 0)
        else:
            v16 = s2 * a + k2 - s2
            lo = {"32s": a, "16s": v16, "8s": s4 * v16 + k4 - s4}
        hi = (self.fused(sizes) if b == sizes[self.tap("fc7")]
              else {"32s": b, "16s": s2 * b, "8s": s4 * s2 * b})
        return {v: (lo[v], hi[v]) for v in VARIANTS}

    def first_window(self, fc7: int, pool4: int, pool3: int) -> int:
        """The first fc7 position of a heads window whose pool4 and pool3 windows (from
        ``s * a``, as the heads crop them) are available from ``pool4`` and ``pool3``."""
        (_, s2), (_, s4) = self.skips
        return max(fc7, -(-pool4 // s2), -(-pool3 // (s2 * s4)))

    def first_valid(self, start: int) -> dict[str, int]:
        """The first rows of each fused map that a stream starting at input row ``start``
        determines."""
        firsts: dict[str, int] = {}
        lo = start
        for name, layer, size in zip(self.model._trunk, self.layers, self.rows, strict=False):
            (lo, _), _, _ = valid_span(layer, size, (lo, size))
            firsts["fc7" if name == "drop7" else name] = lo
        a = self.first_window(firsts["fc7"], firsts["pool4"], firsts["pool3"])
        return {v: span[0] for v, span in self.window(a, a + 1, self.rows).items()}

    def start_for(self, needed: dict[str, int], step: int = 32) -> int:
        """The latest input row (a multiple of ``step``, or 0) from which a stream determines
        fused-map rows ``needed[variant]`` onwards."""
        strides = {v: layer_params(getattr(self.model, FINAL_UPSAMPLERS[v]))[1] for v in needed}
        guess = min(row * strides[v] for v, row in needed.items())
        start = min(self.height, max(0, guess)) // step * step
        while start > 0:
            first = self.first_valid(start)
            if all(first[v] <= row for v, row in needed.items()):
                return start
            start -= step
        return 0


class Stream:
    """Streams one image (or a batch of equal-size ones) through an FCN, exactly.

    Args:
        model: The FCN (eval mode); its trunk may be a reduced-precision copy (``trunk``).
        geometry: The image size's geometry.
        variants: The fused maps wanted.
        cols: The image columns ``[lo, hi)`` the stream covers (None: all).
        trunk: The trunk layers to run (default: the model's own), e.g. in fp16.
        band: The rows fed at a time: each layer then computes at most as many rows as one
            band gives it per call, also when the image's padding makes a band longer, so
            its buffers stay the size of a band's (None: no limit).
    """

    def __init__(self, model: FCN, geometry: StreamGeometry, variants: Sequence[str] = VARIANTS,
                 cols: Span | None = None, trunk: Sequence[nn.Module] | None = None,
                 band: int | None = None) -> None:
        self.model, self.geo = model, geometry
        self.variants = tuple(v for v in VARIANTS if v in set(variants))
        self.cols = cols or (0, geometry.width)
        layers = list(trunk) if trunk is not None else geometry.layers
        self.stages: list[Stage] = []
        self.tap_stage: dict[int, str] = {}
        span, relu, stride = self.cols, False, 1
        for name, layer, n_rows, n_cols in zip(model._trunk, layers, geometry.rows,
                                               geometry.cols, strict=False):
            kind = layer_kind(layer)
            if kind == "point":
                relu = relu or isinstance(layer, nn.ReLU)
                continue
            stage = Stage(layer, relu, n_rows, n_cols, span, 1)
            stage.min_rows = min(MIN_ROWS, -(-MIN_POSITIONS // max(1, stage.cols_out[1]
                                                                   - stage.cols_out[0])))
            stride *= stage.s
            if band is not None:
                stage.max_rows = max(stage.min_rows, -(-band // stride))
            self.stages.append(stage)
            if name in TAPS:
                self.tap_stage[len(self.stages) - 1] = name
            span, relu = stage.cols_out, False
        if any(hi <= lo for lo, hi in (st.cols_out for st in self.stages)):
            raise ValueError(f"columns {self.cols} are too few for the network to see")
        self.tap_relu = relu
        self.tap_cols = {t: self.stages[i].cols_out for i, t in self.tap_stage.items()}
        self.taps: dict[str, tuple[torch.Tensor, int]] = {}
        self.upsampling = DeferredUpsampling(model)
        self.next_row = 0  # the next input row to feed
        self.emitted: dict[str, int] = {}
        self.fc7_next: int | None = None
        self.ended = False

    @property
    def width(self) -> int:
        return self.cols[1] - self.cols[0]

    def start(self, row: int) -> None:
        """Begin at input row ``row`` (before the first :meth:`feed`)."""
        self.next_row = row

    def feed(self, rows: torch.Tensor) -> list[Emitted]:
        """Feed the next input rows ``(N, 3, h, width)`` (normalized); return the new
        fused-map rows."""
        lo = self.next_row
        self.next_row += rows.shape[2]
        ended = self.next_row >= self.geo.height
        self._push(0, rows, lo, ended)
        self.ended = ended
        return self._heads()

    def _push(self, i: int, rows: torch.Tensor | None, lo: int, ended: bool) -> None:
        """Push rows into stage ``i`` and each piece of its output on down the trunk."""
        if i == len(self.stages):
            return
        for out, first, last in self.stages[i].push(rows, lo, ended):
            if out is not None and i in self.tap_stage:
                tap = self.tap_stage[i]
                self._keep(tap, torch.relu(out) if tap == "fc7" and self.tap_relu else out,
                           first)
            self._push(i + 1, out, first, last)

    def _keep(self, tap: str, rows: torch.Tensor, lo: int) -> None:
        rows = rows.to(self.model.score_fr.weight.dtype)
        old = self.taps.get(tap)
        if old is None:
            self.taps[tap] = (rows, lo)
        else:
            self.taps[tap] = (torch.cat([old[0], rows], 2), old[1])

    def _heads(self) -> list[Emitted]:
        """Run the heads on the fc7 rows not yet used (and the two before them, which the
        skip deconvolutions read): new rows of the fused maps."""
        if any(t not in self.taps for t in TAPS):
            return []
        geo = self.geo
        fc7, f_lo = self.taps["fc7"]
        (p4, q_lo), (p3, t_lo) = self.taps["pool4"], self.taps["pool3"]
        b = f_lo + fc7.shape[2]
        if self.fc7_next is None:
            a = geo.first_window(f_lo, q_lo, t_lo)
            self.emitted = {v: span[0] for v, span in geo.window(a, b, geo.rows).items()}
        else:
            if b <= self.fc7_next:
                return []
            a = self.fc7_next
            while a > f_lo and any(geo.window(a, b, geo.rows)[v][0] > self.emitted[v]
                                   for v in self.variants):
                a -= 1
        if b <= a:
            return []
        (ca, cb), origin = self.tap_cols["fc7"], geo.origins(a)
        first = geo.origins(ca)
        feats = {
            "fc7": fc7[:, :, a - f_lo:],
            "pool4": p4[:, :, origin["16s"] - q_lo:, first["16s"] - self.tap_cols["pool4"][0]:],
            "pool3": p3[:, :, origin["8s"] - t_lo:, first["8s"] - self.tap_cols["pool3"][0]:],
        }
        fused = self.model.heads(feats, (0, 0), self.variants, self.upsampling)
        rows = geo.window(a, b, geo.rows)
        cols = geo.window(ca, cb, geo.cols)
        out: list[Emitted] = []
        for v in self.variants:
            r0, r1 = max(self.emitted[v], rows[v][0]), rows[v][1]
            c0, c1 = cols[v]
            if r1 > r0:
                scores = fused[v][:, :, r0 - origin[v]: r1 - origin[v],
                                  c0 - first[v]: c1 - first[v]]
                out.append(Emitted(v, scores, (r0, r1), (c0, c1)))
                self.emitted[v] = r1
        self.fc7_next = b
        self._trim(a)
        return out

    def _trim(self, a: int) -> None:
        """Drop tap rows no later window reads (windows start at ``a - 2`` at the earliest)."""
        origin = self.geo.origins(max(0, a - 2))
        for tap, v in (("fc7", "32s"), ("pool4", "16s"), ("pool3", "8s")):
            rows, lo = self.taps[tap]
            cut = max(0, origin[v] - lo)
            if cut:
                self.taps[tap] = (rows[:, :, cut:], lo + cut)


def run_stream(stream: Stream, source: Callable[[int, int], torch.Tensor], start: int,
               band: int, until: Callable[[], bool] | None = None
               ) -> list[Emitted]:
    """Feed ``stream`` from input row ``start`` in bands of ``band`` rows (``source(r0, r1)``
    gives them) to the end of the image or until ``until()``; return all it emitted."""
    stream.start(start)
    out: list[Emitted] = []
    row = start
    while row < stream.geo.height:
        stop = min(stream.geo.height, row + band)
        out += stream.feed(source(row, stop))
        row = stop
        if until is not None and until():
            break
    return out
