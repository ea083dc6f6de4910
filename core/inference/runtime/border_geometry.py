"""Border reuse, the geometry: which positions of each trunk layer the image reaches.

:func:`plan_axis` follows one axis of an input through the trunk's convolutions, pooling and
pointwise layers: each layer's input and output lengths, the span the image reaches, the
input span those outputs read, and how far a blank input's values depend on the map's
border (the *edge* bands). :func:`proxy_size` picks the small blank proxy whose bands match
an input's (same size modulo 32), and :func:`reached_macs` counts the work the image
reaches. :mod:`core.inference.runtime.border` builds on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

__all__ = [
    "RESIDUE",
    "AxisStep",
    "NotApplicable",
    "Span",
    "first_dense",
    "layer_geometry",
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
class AxisStep:
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


def layer_geometry(layer: nn.Module) -> tuple[str, int, int, int]:
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


def plan_axis(layers: Sequence[nn.Module], size: int) -> list[AxisStep]:
    """Follow an input of ``size`` (all of it reached by the image) through ``layers``."""
    lo, hi = 0, size
    el = er = 0  # a blank input is zero, as conv1_1's padding: no border effect yet
    steps: list[AxisStep] = []
    for index, layer in enumerate(layers):
        kind, k, s, p = layer_geometry(layer)
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
        steps.append(AxisStep(size, out, (lo, hi), d_out, need, p, (min(el, out), min(er, out))))
        size, (lo, hi) = out, d_out
    return steps


def first_dense(steps: Sequence[AxisStep]) -> int:
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

