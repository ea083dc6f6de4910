"""What a Segmenter checks and reports: images as RGB arrays, variant choices, progress."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from core.errors import FCNStudioError
from core.variants import VARIANTS

__all__ = ["Progress", "ProgressFn", "as_rgb", "check_variants", "scaled"]

ProgressFn = Callable[[float], None]


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Check an image and return it as a C-contiguous ``H x W x 3`` uint8 RGB array.

    Gray ``H x W`` (or ``H x W x 1``) is repeated over three channels; the alpha channel
    of ``H x W x 4`` is dropped.

    Raises:
        FCNStudioError: Not a uint8 numpy array of one of those shapes, or empty.
    """
    if not isinstance(image, np.ndarray):
        raise FCNStudioError(f"Expected an image as a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise FCNStudioError(
            f"Expected a uint8 image (values 0..255), got dtype {image.dtype}; "
            "convert it first, e.g. with core.data.imageio.read_image"
        )
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise FCNStudioError(
            f"Expected an H x W x 3 RGB, H x W x 4 RGBA or H x W gray image, "
            f"got shape {image.shape}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise FCNStudioError(f"The image is empty (shape {image.shape})")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image)


def check_variants(variants: str | Iterable[str]) -> tuple[str, ...]:
    wanted = {variants} if isinstance(variants, str) else set(variants)
    unknown = wanted - set(VARIANTS)
    if unknown or not wanted:
        given = ", ".join(sorted(unknown)) or "none"
        raise FCNStudioError(f"Unknown variants: {given}; choose from {', '.join(VARIANTS)}")
    return tuple(v for v in VARIANTS if v in wanted)


class Progress:
    """Maps per-chunk fractions to an overall fraction; reports only increases."""

    def __init__(self, fn: ProgressFn | None, total: int) -> None:
        self.fn = fn
        self.total = max(1, total)
        self.done = 0
        self.last = -1.0

    def chunk(self, size: int) -> Callable[[float], None]:
        base = self.done

        def report(fraction: float) -> None:
            self.emit((base + size * min(1.0, fraction)) / self.total)

        return report

    def finish_chunk(self, size: int) -> None:
        self.done += size
        self.emit(self.done / self.total)

    def emit(self, value: float) -> None:
        if self.fn is not None and value > self.last + 1e-9:
            self.last = value
            self.fn(value)


def scaled(report: Callable[[float], None], k: int, n: int) -> Callable[[float], None]:
    """Report fractions of the ``k``-th of ``n`` equal parts of a task."""
    return lambda fraction: report((k + min(1.0, fraction)) / n)
