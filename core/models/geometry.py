"""Coordinate maps through conv, pool and deconvolution layers, and the crop offsets they imply.

Each layer maps its output coordinate ``x`` to its input coordinate ``s * x + c`` with
``c = (k - 1) / 2 - p`` (Caffe's ``coord_map``). Composed through the trunk, a layer's pixel
``x`` sits at image coordinate ``a * x + b``. A deconvolution inverts the map of a convolution of
the same parameters. Two maps with the same scale ``a`` align after a crop of ``(b1 - b2) / a``.
This is how the reference nets' crop offsets (19; 5, 27; 9, 31) follow from padding and strides.
"""

from __future__ import annotations

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
            k, s, p = _params(layer)
            c = Fraction(k - 1, 2) - p
            # x_in = (x_out - c) / s
            return CoordMap(self.a / s, self.b - self.a * c / s)
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k, s, p = _params(layer)
            c = Fraction(k - 1, 2) - p
            return CoordMap(self.a * s, self.b + self.a * c)
        return self  # pointwise layers (ReLU, dropout) keep the geometry

    def chain(self, layers: list[nn.Module]) -> CoordMap:
        """Compose the maps of ``layers`` applied in order."""
        m = self
        for layer in layers:
            m = m.through(layer)
        return m


def _params(layer: nn.Module) -> tuple[int, int, int]:
    def first(v: int | tuple[int, ...]) -> int:
        v = v if isinstance(v, tuple) else (v, v)
        if len(set(v)) != 1:
            raise ValueError(f"{layer} is not square; only square geometry is supported")
        return int(v[0])

    return first(layer.kernel_size), first(layer.stride), first(layer.padding)


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
