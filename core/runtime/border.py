"""Border reuse: compute only the trunk activations that the image reaches.

The reference FCN pads conv1_1 by 100 pixels, so a 500x500 image runs the early layers on
698x698 maps. An activation whose receptive field holds no image pixel reads only that
padding (and the layers' own zero padding): it is the same for every image of that size,
the value a blank (all-zero) input gives there. So each layer needs to compute only the part
of its output the image reaches, and reads around it a thin *ring* of blank-input values.

The blank input's activations are constant away from the maps' borders and, near them,
depend only on the distance to the border (and, on the bottom and right, on the size modulo
32, which sets how the ceil-mode pooling windows end). So the rings of *any* size come from
one forward pass of a small blank *proxy* input with the same size modulo 32 (at 500x500:
a 20x20 proxy, about a tenth of the work of one pass), kept per residue; assembling a
size's rings is then indexing only.

The result is the same function as the plain forward pass, not an approximation: at
500x500 the trunk's work drops from 181 to 125 GMAC. Outputs differ from a plain pass by
floating-point rounding only (sums over another extent may run in another order).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.runtime.options import LRUCache

__all__ = [
    "BorderReuse",
    "NotApplicable",
    "Rings",
    "Span",
    "plan_axis",
    "proxy_size",
    "reached_macs",
]

Span = tuple[int, int]
"""A half-open interval ``[lo, hi)`` of positions along one axis."""

RESIDUE = 32
"""Proxies match the input size modulo this (2 to the number of pooling layers)."""


class NotApplicable(ValueError):
    """The model's trunk has a layer border reuse cannot reason about."""


@dataclass(frozen=True)
class _AxisStep:
    """One layer along one axis.

    Attributes:
        size_in / size_out: The layer's input and output lengths.
        dirty_in / dirty_out: The positions the image reaches (input / output coordinates).
        need: The input positions the reached outputs read, in input coordinates shifted
            by the layer's padding (so it may extend into the padding).
        pad: The layer's padding.
        edge: ``(left, right)``: how many outputs at each end a blank input's values
            depend on the border for (the rest hold one value per channel).
    """

    size_in: int
    size_out: int
    dirty_in: Span
    dirty_out: Span
    need: Span
    pad: int
    edge: tuple[int, int]


def _layer_geometry(layer: nn.Module) -> tuple[str, int, int, int]:
    """``(kind, kernel, stride, padding)`` of a trunk layer (kind: conv, pool or point)."""
    if isinstance(layer, nn.Conv2d):
        k, s, p, d = layer.kernel_size, layer.stride, layer.padding, layer.dilation
        if isinstance(p, str) or k[0] != k[1] or p[0] != p[1]:
            raise NotApplicable(f"{type(layer).__name__} with non-square geometry")
        if s != (1, 1) or d != (1, 1) or layer.padding_mode != "zeros":
            raise NotApplicable("convolution with a stride, dilation or non-zero padding mode")
        return "conv", k[0], 1, p[0]
    if isinstance(layer, nn.MaxPool2d):
        k = layer.kernel_size if isinstance(layer.kernel_size, tuple) else (layer.kernel_size,) * 2
        s = layer.stride if isinstance(layer.stride, tuple) else (layer.stride,) * 2
        if k[0] != k[1] or s[0] != s[1] or layer.padding not in (0, (0, 0)) or (
            layer.dilation not in (1, (1, 1))
        ):
            raise NotApplicable("max pooling with padding, dilation or a non-square window")
        return "pool", int(k[0]), int(s[0]), 0
    if isinstance(layer, (nn.ReLU, nn.Dropout, nn.Identity)):
        return "point", 1, 1, 0
    raise NotApplicable(f"unsupported trunk layer {type(layer).__name__}")


def _pool_out(size: int, k: int, s: int, ceil_mode: bool) -> int:
    n = size - k
    out = (-(-n // s) if ceil_mode else n // s) + 1
    if ceil_mode and (out - 1) * s >= size:  # the last window must start inside the input
        out -= 1
    return out


def plan_axis(layers: Sequence[nn.Module], size: int) -> list[_AxisStep]:
    """Follow an input of ``size`` (all of it reached by the image) through ``layers``."""
    lo, hi = 0, size
    el = er = 0  # a blank input is zero, as conv1_1's padding: no border effect yet
    steps: list[_AxisStep] = []
    for index, layer in enumerate(layers):
        kind, k, s, p = _layer_geometry(layer)
        if kind == "conv":
            out = size + 2 * p - k + 1
            d_out = (max(0, lo + p - k + 1), min(out, hi + p))
            need = (d_out[0], d_out[1] + k - 1)
            if index > 0 or el or er:
                el, er = el + p, er + p
        elif kind == "pool":
            out = _pool_out(size, k, s, bool(getattr(layer, "ceil_mode", False)))
            d_out = (max(0, -(-(lo - k + 1) // s)), min(out, (hi - 1) // s + 1))
            need = (s * d_out[0], min(size, s * (d_out[1] - 1) + k))
            first_right = -(-(size - er - k + 1) // s)  # windows touching the right band
            el, er = -(-el // s), max(0, out - max(0, first_right))
        else:
            out, d_out, need = size, (lo, hi), (lo, hi)
        if out < 1:
            raise NotApplicable(f"an input of {size} px is too small for layer {index}")
        steps.append(_AxisStep(size, out, (lo, hi), d_out, need, p, (min(el, out), min(er, out))))
        size, (lo, hi) = out, d_out
    return steps


def _dense_from(steps: Sequence[_AxisStep]) -> int:
    """The first layer whose whole input and output the image reaches (from there on:
    plain layers)."""
    return next((i for i, st in enumerate(steps)
                 if st.dirty_in == (0, st.size_in) and st.dirty_out == (0, st.size_out)),
                len(steps))


def proxy_size(layers: Sequence[nn.Module], size: int, last: int) -> int:
    """The smallest blank-proxy length, congruent to ``size`` modulo 32, whose outputs of
    layers ``0 .. last`` each hold a border-independent position (else ``size``)."""
    start = size % RESIDUE or RESIDUE
    for proxy in range(start, size, RESIDUE):
        try:
            steps = plan_axis(layers, proxy)
        except NotApplicable:
            continue
        if all(st.size_out > st.edge[0] + st.edge[1] for st in steps[: last + 1]):
            return proxy
    return size


def reached_macs(model: nn.Module, height: int, width: int) -> tuple[float, float]:
    """Multiply-accumulates of the trunk's convolutions: ``(all, reached only)``."""
    layers = [getattr(model, name) for name in model._trunk]
    ys, xs = plan_axis(layers, height), plan_axis(layers, width)
    full = reached = 0.0
    for layer, y, x in zip(layers, ys, xs, strict=True):
        if isinstance(layer, nn.Conv2d):
            per = layer.weight[0].numel() * layer.out_channels
            full += per * y.size_out * x.size_out
            reached += per * (y.dirty_out[1] - y.dirty_out[0]) * (x.dirty_out[1] - x.dirty_out[0])
    return full, reached


# --------------------------------------------------------------------------- rings


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
class _Blank:
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


_SLOTS: LRUCache[tuple, torch.Tensor] = LRUCache(1024)


def _slots(el: int, er: int, size: int, start: int, stop: int, device: torch.device
           ) -> torch.Tensor:
    """Index into a compressed blank map (see :class:`_Blank`) of positions start..stop-1
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


_KEEP: LRUCache[tuple, torch.Tensor] = LRUCache(256)


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


def _compress(t: torch.Tensor, edges: tuple[tuple[int, int], tuple[int, int]],
              live: bool = False) -> _Blank:
    """Keep a zero slot, the border bands and one interior position per axis (``live``:
    keep the autograd graph, for training)."""
    t = t[:1] if live else t[:1].detach()
    for axis, (el, er) in zip((2, 3), edges, strict=True):
        size = t.shape[axis]
        t = t.index_select(axis, _keep_index(el, er, size, t.device))
        t = torch.cat([torch.zeros_like(t.narrow(axis, 0, 1)), t], axis)
    return _Blank(t.contiguous(), edges)


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

    steps: list[tuple[_AxisStep, _AxisStep]]
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


class BorderReuse:
    """Runs an FCN trunk computing only what the image reaches (see the module docstring).

    ``features(x)`` returns what ``model.features(x)`` does (pool3, pool4, fc7).

    Args:
        model: An FCN (``_trunk`` layer names). When autograd is on and the weights require
            grad (training), the rings are recomputed by every call from a proxy pass that
            autograd follows, so gradients are exact too; active dropout before the dense
            layers makes the plain pass run.
        capacity: How many input sizes (and proxy residues) to remember.
        taps: The trunk outputs returned besides the last one ("fc7").

    Raises:
        NotApplicable: The trunk holds a layer this module cannot follow.
    """

    def __init__(self, model: nn.Module, capacity: int = 8,
                 taps: Sequence[str] = ("pool3", "pool4")) -> None:
        names = list(getattr(model, "_trunk", ()))
        if not names:
            raise NotApplicable("the model has no _trunk layer list")
        self.names = names
        self.layers = [getattr(model, n) for n in names]
        self.kinds = [_layer_geometry(layer)[0] for layer in self.layers]
        self.tap_index = {names.index(t): t for t in taps}
        self.tap_index[len(names) - 1] = "fc7"  # the last output, whole
        self._plans: LRUCache[tuple, Plan] = LRUCache(max(1, capacity))
        self._blanks: LRUCache[tuple, dict[int, _Blank]] = LRUCache(max(1, capacity))

    def clear(self) -> None:
        """Forget every record (after the weights change)."""
        self._plans.clear()
        self._blanks.clear()

    def __len__(self) -> int:
        return len(self._plans)

    @staticmethod
    def _context(x: torch.Tensor) -> tuple[tuple, torch.memory_format]:
        cl = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        fmt = torch.channels_last if cl else torch.contiguous_format
        autocast = torch.is_autocast_enabled(x.device.type) if x.device.type in (
            "cpu", "cuda") else False
        return (x.dtype, x.device, fmt, autocast), fmt

    def plan(self, x: torch.Tensor, run: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
             *, uniform: bool = False, live: bool = False) -> Plan:
        """The plan and rings for inputs like ``x`` (made, with a proxy pass if needed).

        Args:
            x: An input of the size, dtype, device and memory format to plan for.
            run: ``run(i, t)`` applies layer ``i`` (default: the model's own layer).
            uniform: Every convolution and pooling layer (and every tap) gets its four ring
                pieces, empty ones as zero-size tensors, so that the structure is the same
                at every size and one traced graph serves them all.
            live: Training: the rings come from a fresh proxy pass that autograd follows
                (they depend on the weights), and nothing is cached.
        """
        context, fmt = self._context(x)
        h, w = x.shape[-2:]
        if live:
            return self._make_plan(h, w, x, fmt, run or self._layer, uniform, live=True)
        key = (h, w, uniform, *context)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._make_plan(h, w, x, fmt, run or self._layer, uniform)
            self._plans.put(key, plan)
        return plan

    def _layer(self, i: int, t: torch.Tensor) -> torch.Tensor:
        return self.layers[i](t)

    def _make_plan(self, h: int, w: int, x: torch.Tensor, fmt: torch.memory_format,
                   run: Callable[[int, torch.Tensor], torch.Tensor], uniform: bool,
                   live: bool = False) -> Plan:
        ys, xs = plan_axis(self.layers, h), plan_axis(self.layers, w)
        steps = list(zip(ys, xs, strict=True))
        dense_from = max(_dense_from(ys), _dense_from(xs))
        wanted = {i - 1 for i in range(dense_from) if self.kinds[i] != "point"}
        wanted |= {i for i in self.tap_index if i < dense_from}
        wanted.discard(-1)
        last = max(wanted, default=-1)
        blanks = self._blank(x, h, w, last, wanted, fmt, run, live) if last >= 0 else {}
        sparse_to = len(steps) if uniform else dense_from
        inputs: dict[int, Rings] = {}
        taps: dict[int, Rings] = {}
        for i, (y, xa) in enumerate(steps[:sparse_to]):
            if self.kinds[i] == "point":
                continue
            inner = ((y.dirty_in[0] + y.pad, y.dirty_in[1] + y.pad),
                     (xa.dirty_in[0] + xa.pad, xa.dirty_in[1] + xa.pad))
            src = blanks.get(i - 1) if i < dense_from else None  # else: padding only
            inputs[i] = self._rings(src, (y.need, xa.need), inner, y.pad,
                                    (y.size_in, xa.size_in), x, fmt, self._channels(i), uniform)
        for i in self.tap_index:
            if i < dense_from or uniform:
                y, xa = steps[i]
                taps[i] = self._rings(blanks.get(i), ((0, y.size_out), (0, xa.size_out)),
                                      (y.dirty_out, xa.dirty_out), 0,
                                      (y.size_out, xa.size_out), x, fmt, self._channels(i + 1),
                                      uniform)
        return Plan(steps, sparse_to if uniform else dense_from, inputs, taps)

    def _channels(self, i: int) -> int:
        """Channels of the input of layer ``i`` (of the trunk's output for the last + 1)."""
        for layer in reversed(self.layers[:i]):
            if isinstance(layer, nn.Conv2d):
                return layer.out_channels
        return 3

    @staticmethod
    def _rings(src: _Blank | None, outer: tuple[Span, Span], inner: tuple[Span, Span],
               pad: int, size: tuple[int, int], x: torch.Tensor, fmt: torch.memory_format,
               channels: int, uniform: bool) -> Rings:
        (oy0, oy1), (ox0, ox1) = outer
        (iy0, iy1), (ix0, ix1) = inner

        def region(ys: Span, xs: Span) -> torch.Tensor | None:
            shape = (1, channels, max(0, ys[1] - ys[0]), max(0, xs[1] - xs[0]))
            if shape[2] == 0 or shape[3] == 0:
                return x.new_zeros(shape) if uniform else None
            if src is None:  # outside the image: only padding
                return x.new_zeros(shape).contiguous(memory_format=fmt)
            return src.region(ys, xs, pad, size, fmt)

        return Rings(top=region((oy0, iy0), (ox0, ox1)), bottom=region((iy1, oy1), (ox0, ox1)),
                     left=region((iy0, iy1), (ox0, ix0)), right=region((iy0, iy1), (ix1, ox1)))

    def _blank(self, x: torch.Tensor, h: int, w: int, last: int, wanted: set[int],
               fmt: torch.memory_format, run: Callable[[int, torch.Tensor], torch.Tensor],
               live: bool = False) -> dict[int, _Blank]:
        """Border bands of a blank input's activations (outputs of layers ``wanted``)."""
        ph, pw = proxy_size(self.layers, h, last), proxy_size(self.layers, w, last)
        context, _ = self._context(x)
        key = (ph, pw, last, tuple(sorted(wanted)), *context)
        cached = None if live else self._blanks.get(key)
        if cached is not None:
            return cached
        ys, xs = plan_axis(self.layers, ph), plan_axis(self.layers, pw)
        t = torch.zeros((1, x.shape[1], ph, pw), dtype=x.dtype, device=x.device)
        t = t.contiguous(memory_format=fmt)
        out: dict[int, _Blank] = {}
        for i in range(last + 1):
            t = run(i, t)
            if i in wanted:
                out[i] = _compress(t, (ys[i].edge, xs[i].edge), live)
        if not live:
            self._blanks.put(key, out)
        return out

    def features(self, x: torch.Tensor,
                 run: Callable[[int, torch.Tensor], torch.Tensor] | None = None
                 ) -> dict[str, torch.Tensor]:
        """The trunk's taps and last output for ``x`` (``(N, 3, H, W)``, normalized).

        Args:
            x: The input.
            run: ``run(i, t)`` applies layer ``i`` (default: the model's own layer).
        """
        run = run or self._layer
        live = torch.is_grad_enabled() and any(
            p.requires_grad for layer in self.layers for p in layer.parameters())
        plan = self.plan(x, run, live=live)
        if any(isinstance(m, nn.Dropout) and m.training and m.p > 0
               for m in self.layers[: plan.dense_from]):
            return self._plain(x, run)  # random masks where rings would be reused
        return self.sparse(x, plan, run=run)

    def _plain(self, x: torch.Tensor, run: Callable[[int, torch.Tensor], torch.Tensor]
               ) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for i in range(len(self.layers)):
            x = run(i, x)
            if i in self.tap_index:
                out[self.tap_index[i]] = x
        return out

    def sparse(self, x: torch.Tensor, plan: Plan, rings: Sequence[torch.Tensor] | None = None,
               run: Callable[[int, torch.Tensor], torch.Tensor] | None = None
               ) -> dict[str, torch.Tensor]:
        """The sparse pass of ``plan`` (``rings``: its :meth:`Plan.ring_tensors`, to trace
        a graph that takes them as inputs)."""
        run = run or self._layer
        pieces = iter(rings) if rings is not None else None

        def take(r: Rings) -> list[torch.Tensor | None]:
            if pieces is None:
                return r.pieces()
            return [None if t is None else next(pieces) for t in r.pieces()]

        inputs = {i: take(plan.inputs[i]) for i in sorted(plan.inputs)}
        taps = {i: take(plan.taps[i]) for i in sorted(plan.taps)}
        out: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.layers):
            if i in inputs:
                x = assemble(x, *inputs[i])
                if isinstance(layer, nn.Conv2d):
                    x = F.conv2d(x, layer.weight, layer.bias, 1, 0, 1, layer.groups)
                else:
                    x = run(i, x)
            else:
                x = run(i, x)
            if i in self.tap_index:
                out[self.tap_index[i]] = assemble(x, *taps[i]) if i in taps else x
        return out
