"""Coordinate maps through conv, pool and deconvolution layers, and the crop offsets they imply.

Each layer maps its output coordinate ``x`` to its input coordinate ``s * x + c`` with
``c = (k - 1) / 2 - p`` (Caffe's ``coord_map``). Composed through the trunk, a layer's pixel
``x`` sits at image coordinate ``a * x + b``. A deconvolution inverts the map of a convolution of
the same parameters. Two maps with the same scale ``a`` align after a crop of ``(b1 - b2) / a``.
This is how the reference nets' crop offsets (19; 5, 27; 9, 31) follow from padding and strides.

Receptive fields compose through the same layers: :func:`input_span` gives the input indices
an output range of one layer reads, and :func:`receptive_span` composes it backwards through
a path of layers and crops, clipping to each map's real size (:func:`output_length`), so one
output pixel maps to an exact input interval per axis (VGG16: 212 pixels at pool5, 404 at
fc7). The field of a deconvolution's output depends on its phase, so it is computed per
pixel rather than as one size per layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from torch import nn


@dataclass(frozen=True)
class CoordMap:
    """Image coordinate ``a * x + b`` of a layer's pixel ``x`` (exact rational arithmetic)."""

    a: Fraction = Fraction(1)
    b: Fraction = Fraction(0)

    def through(self, layer: nn.Module) -> CoordMap:
        """Return the map of the output of ``layer`` applied after this one."""
        if isinstance(layer, nn.ConvTranspose2d):
            k, s, p = layer_params(layer)
            c = Fraction(k - 1, 2) - p
            # x_in = (x_out - c) / s
            return CoordMap(self.a / s, self.b - self.a * c / s)
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k, s, p = layer_params(layer)
            c = Fraction(k - 1, 2) - p
            return CoordMap(self.a * s, self.b + self.a * c)
        return self  # pointwise layers (ReLU, dropout) keep the geometry

    def chain(self, layers: list[nn.Module]) -> CoordMap:
        """Compose the maps of ``layers`` applied in order."""
        m = self
        for layer in layers:
            m = m.through(layer)
        return m


def layer_params(layer: nn.Module) -> tuple[int, int, int]:
    """``(kernel, stride, padding)`` of a square convolution, pooling or deconvolution layer.

    Raises:
        ValueError: The layer's geometry is not square.
    """
    def first(v: int | tuple[int, ...]) -> int:
        v = v if isinstance(v, tuple) else (v, v)
        if len(set(v)) != 1:
            raise ValueError(f"{layer} is not square; only square geometry is supported")
        return int(v[0])

    return first(layer.kernel_size), first(layer.stride), first(layer.padding)


def output_length(layer: nn.Module, length: int) -> int:
    """How long ``layer``'s output is along an axis where its input is ``length`` long
    (max pooling in ceil mode as PyTorch and Caffe count it: no window starts in the padding)."""
    if isinstance(layer, nn.ConvTranspose2d):
        k, s, p = layer_params(layer)
        return (length - 1) * s - 2 * p + k
    if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        k, s, p = layer_params(layer)
        span = length + 2 * p - k
        if getattr(layer, "ceil_mode", False):
            out = -(-span // s) + 1
            if (out - 1) * s >= length + p:
                out -= 1
            return out
        return span // s + 1
    return length


def input_span(layer: nn.Module, lo: int, hi: int) -> tuple[int, int]:
    """The input indices ``lo' .. hi'`` (inclusive) that outputs ``lo .. hi`` of ``layer`` read.

    Padding is not clipped: indices below 0 or past the input's end are padding, which the
    caller clips to the map (:func:`output_length` gives its size). A pointwise layer reads
    the same indices.

    Raises:
        ValueError: A dilated layer (not supported).
    """
    if not isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d)):
        return lo, hi
    if getattr(layer, "dilation", 1) not in (1, (1, 1)):
        raise ValueError(f"{layer} is dilated; only undilated geometry is supported")
    k, s, p = layer_params(layer)
    if isinstance(layer, nn.ConvTranspose2d):  # output o = s * i - p + t, t in 0 .. k - 1
        return -((k - 1 - lo - p) // s), (hi + p) // s
    return lo * s - p, hi * s - p + k - 1


Crop = tuple[int, int]
"""A crop step of a path: ``(offset, output length)``; output ``o`` is input ``o + offset``."""


def receptive_span(path: Sequence[nn.Module | Crop], length: int, index: int, *,
                   clip: bool = True) -> tuple[int, int] | None:
    """The input indices ``lo .. hi`` (inclusive) that output ``index`` of ``path`` reads.

    Args:
        path: Layers and crops from the input to the output, in order.
        length: The input's length along the axis.
        index: The output index.
        clip: Clip to every map's real size on the way (padding holds no input), which makes
            the span exact; without it the span reaches into the padding (and beyond the
            input's end), the field as kernel sizes and strides alone give it.

    Returns:
        ``(lo, hi)``, or None when ``clip`` and no input reaches the output.
    """
    lengths = [int(length)]
    for step in path:
        lengths.append(step[1] if isinstance(step, tuple) else output_length(step, lengths[-1]))
    lo = hi = int(index)
    for step, n_in in zip(reversed(path), reversed(lengths[:-1]), strict=True):
        lo, hi = (lo + step[0], hi + step[0]) if isinstance(step, tuple) else input_span(
            step, lo, hi)
        if clip:
            lo, hi = max(lo, 0), min(hi, n_in - 1)
            if lo > hi:
                return None
    return lo, hi


def crop_offset(coarse_to_crop: CoordMap, reference: CoordMap) -> int:
    """Offset at which the map ``coarse_to_crop`` must be cropped to align with ``reference``.

    Both maps must have the same scale; the offset must be a non-negative whole number.
    """
    if coarse_to_crop.a != reference.a:
        raise ValueError(f"cannot align maps of scales {coarse_to_crop.a} and {reference.a}")
    offset = (reference.b - coarse_to_crop.b) / coarse_to_crop.a
    if offset.denominator != 1 or offset < 0:
        raise ValueError(f"maps do not align on whole pixels (offset {offset})")
    return int(offset)
