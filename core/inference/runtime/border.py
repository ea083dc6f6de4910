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

The geometry is in :mod:`~core.inference.runtime.border_geometry`, the records (blank
bands, rings, plans) in :mod:`~core.inference.runtime.border_rings`; this module runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from core.inference.runtime.border_geometry import (
    NotApplicable,
    Span,
    first_dense,
    layer_geometry,
    plan_axis,
    proxy_size,
    reached_macs,
)
from core.inference.runtime.border_rings import Blank, Plan, Rings, assemble, compress_blank
from core.inference.runtime.options import LRUCache, MiB

__all__ = [
    "PLAN_BYTES",
    "BorderReuse",
    "NotApplicable",
    "Plan",
    "Rings",
    "Span",
    "plan_axis",
    "proxy_size",
    "reached_macs",
]

PLAN_BYTES = 64 * MiB
"""Default bytes of per-size plans (rings) a :class:`BorderReuse` keeps; its blank bands get
half as much. A plan of the full-width FCN (fp32) holds 5.3 MiB of rings at 128 px, 15.5
at 500 and 29 at 1024 (a tile), the default model's (width 0.125) an eighth of that: 64 MiB
keep two full-width tile shapes or four 500-px sizes, while the entry count (8) binds for
narrow models. Remaking a dropped plan is indexing only when its blank bands are still
kept (10-50 ms at full width, against 1.3 s for a 500-px pass); the bands need a proxy
pass (about a quarter of a pass) and are 2.6-4.5 MiB each at full width."""


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
        max_bytes: Bytes of rings (per-size plans) to remember, besides ``capacity``; the
            blank bands (per proxy residue) get half as much again (see
            :data:`PLAN_BYTES`). None: entries only.

    Raises:
        NotApplicable: The trunk holds a layer this module cannot follow.
    """

    def __init__(self, model: nn.Module, capacity: int = 8,
                 taps: Sequence[str] = ("pool3", "pool4"),
                 max_bytes: int | None = None) -> None:
        names = list(getattr(model, "_trunk", ()))
        if not names:
            raise NotApplicable("the model has no _trunk layer list")
        self.names = names
        self.layers = [getattr(model, n) for n in names]
        self.kinds = [layer_geometry(layer)[0] for layer in self.layers]
        self.tap_index = {names.index(t): t for t in taps}
        self.tap_index[len(names) - 1] = "fc7"  # the last output, whole
        budget = PLAN_BYTES if max_bytes is None else max_bytes
        self._plans: LRUCache[tuple, Plan] = LRUCache(max(1, capacity), max_bytes=budget)
        self._blanks: LRUCache[tuple, dict[int, Blank]] = LRUCache(
            max(1, capacity), max_bytes=max(1, budget // 2))

    def caches(self) -> dict[str, LRUCache]:
        """The per-size plans and per-residue blank bands (for diagnostics)."""
        return {"plans": self._plans, "blanks": self._blanks}

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
        dense_from = max(first_dense(ys), first_dense(xs))
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
    def _rings(src: Blank | None, outer: tuple[Span, Span], inner: tuple[Span, Span],
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
               live: bool = False) -> dict[int, Blank]:
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
        out: dict[int, Blank] = {}
        for i in range(last + 1):
            t = run(i, t)
            if i in wanted:
                out[i] = compress_blank(t, (ys[i].edge, xs[i].edge), live)
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
