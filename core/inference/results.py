"""What a prediction keeps, and what it computes for a region when asked.

Per variant a :class:`VariantOutput` stores

* the fused score map before the final upsampling (``(C, h, w)`` float32 at stride 32, 16
  or 8: 64 times fewer pixels than the image at 8s) and the final upsampler that turns it
  into the network's full-resolution scores (:class:`~core.models.upsampling.RegionUpsampler`:
  crop offset, stride and the bilinear filter, or the learned kernel), so that the scores of
  any region, at full resolution or subsampled, are reconstructed exactly;
* full-resolution labels (uint8) and confidence (float16), written as the tiles finish;
* whole-image sums (class counts, confidence, entropy) accumulated at the same time.

Probabilities, one class's probability, entropy and scores are computed on demand for a
:class:`Region` and a subsampling ``step`` (a zoomed-out view), in bands of rows, so asking for
the whole image holds one band of all classes at a time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from core.models.upsampling import RegionUpsampler

__all__ = ["Prediction", "Region", "VariantOutput", "summarize_scores"]

BAND_ELEMENTS = 1 << 20
"""On-demand maps are computed over bands of at most this many scores (all classes)."""


@dataclass(frozen=True)
class Region:
    """A rectangle of image pixels: rows ``top..bottom-1``, columns ``left..right-1``."""

    top: int
    left: int
    bottom: int
    right: int

    @classmethod
    def whole(cls, size: tuple[int, int]) -> Region:
        """The whole of an image of ``size`` (H, W)."""
        return cls(0, 0, size[0], size[1])

    @property
    def height(self) -> int:
        return max(0, self.bottom - self.top)

    @property
    def width(self) -> int:
        return max(0, self.right - self.left)

    @property
    def area(self) -> int:
        return self.height * self.width

    def clip(self, size: tuple[int, int]) -> Region:
        """This region inside an image of ``size`` (H, W)."""
        h, w = size
        top, left = min(max(0, self.top), h), min(max(0, self.left), w)
        return Region(top, left, min(max(top, self.bottom), h), min(max(left, self.right), w))

    def slices(self, step: int = 1) -> tuple[slice, slice]:
        """Numpy slices of the region (every ``step``-th pixel)."""
        return slice(self.top, self.bottom, step), slice(self.left, self.right, step)


def summarize_scores(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Labels (argmax), confidence (top probability) and normalized entropy of ``(C, h, w)``
    scores: ``(h, w)`` int64, float32, float32 (entropy in [0, 1]: 0 certain, 1 uniform)."""
    c = scores.shape[0]
    top, labels = scores.max(0)
    e = torch.exp(scores - top)
    z = e.sum(0)
    confidence = z.reciprocal()
    # entropy = log z - sum_c p_c (s_c - top), with p = e / z
    entropy = torch.log(z) - (e * (scores - top)).sum(0) * confidence
    entropy = (entropy / (math.log(c) if c > 1 else 1.0)).clamp_(0.0, 1.0)
    return labels, confidence, entropy


class VariantOutput:
    """One variant's prediction for one image (see the module docstring).

    Attributes:
        variant: "32s", "16s" or "8s".
        fused: ``(C, h, w)`` float32 score map before the final upsampling.
        upsampler: What reconstructs full-resolution scores from ``fused``.
        labels: ``(H, W)`` uint8 predicted classes (complete once the prediction is).
        confidence: ``(H, W)`` float16 probability of the predicted class.
    """

    def __init__(self, variant: str, fused: torch.Tensor, upsampler: RegionUpsampler,
                 image_size: tuple[int, int]) -> None:
        self.variant = variant
        self.fused = fused
        self.upsampler = upsampler
        self.image_size = image_size
        self.labels = np.zeros(image_size, dtype=np.uint8)
        self.confidence = np.zeros(image_size, dtype=np.float16)
        self.counts = np.zeros(self.num_classes, dtype=np.int64)
        self.confidence_sum = 0.0
        self.entropy_sum = 0.0
        self.pixels = 0

    @property
    def num_classes(self) -> int:
        """Number of classes C."""
        return int(self.fused.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes held (fused map, labels, confidence)."""
        return (self.fused.numel() * self.fused.element_size() + self.labels.nbytes
                + self.confidence.nbytes)

    # ------------------------------------------------------------------ whole-image sums

    def class_share(self) -> np.ndarray:
        """Fraction of the pixels predicted as each class, ``(C,)`` float64, summing to 1."""
        return self.counts / max(1, self.pixels)

    @property
    def mean_confidence(self) -> float:
        """Mean probability of the predicted class over the image."""
        return self.confidence_sum / max(1, self.pixels)

    @property
    def mean_entropy(self) -> float:
        """Mean normalized entropy over the image."""
        return self.entropy_sum / max(1, self.pixels)

    # ------------------------------------------------------------------ on demand

    def _region(self, region: Region | None) -> Region:
        return Region.whole(self.image_size) if region is None else region.clip(self.image_size)

    def _bands(self, region: Region, step: int) -> Iterator[tuple[int, int, torch.Tensor]]:
        """``(i0, i1, scores)``: output rows ``i0..i1-1`` of the subsampled region and their
        full-resolution scores ``(C, i1 - i0, w)``."""
        rows = range(region.top, region.bottom, step)
        cols = range(region.left, region.right, step)
        per_row = max(1, len(cols) * self.num_classes)
        band = max(1, BAND_ELEMENTS // per_row)
        with torch.inference_mode():
            for i0 in range(0, len(rows), band):
                i1 = min(len(rows), i0 + band)
                yield i0, i1, self.upsampler(self.fused, rows[i0:i1], cols)

    def _shape(self, region: Region, step: int) -> tuple[int, int]:
        return len(range(region.top, region.bottom, step)), len(range(region.left, region.right,
                                                                      step))

    def scores(self, region: Region | None = None, step: int = 1) -> np.ndarray:
        """Full-resolution scores ``(C, h, w)`` float32 of ``region`` (None: the image),
        every ``step``-th pixel."""
        r = self._region(region)
        out = np.empty((self.num_classes, *self._shape(r, step)), dtype=np.float32)
        for i0, i1, s in self._bands(r, step):
            out[:, i0:i1] = s.numpy()
        return out

    def probabilities(self, region: Region | None = None, step: int = 1) -> np.ndarray:
        """Softmax probabilities ``(C, h, w)`` float32 of ``region``, every ``step``-th pixel."""
        r = self._region(region)
        out = np.empty((self.num_classes, *self._shape(r, step)), dtype=np.float32)
        for i0, i1, s in self._bands(r, step):
            out[:, i0:i1] = torch.softmax(s, 0).numpy()
        return out

    def probability(self, cls: int, region: Region | None = None, step: int = 1,
                    log_normalizer: np.ndarray | None = None) -> np.ndarray:
        """Class ``cls``'s probability ``(h, w)`` float32 over ``region``.

        With the region's ``log_normalizer`` (from :meth:`log_normalizer`, same region and
        step) only that class's scores are computed: switching classes is cheap.
        """
        if not 0 <= cls < self.num_classes:
            raise IndexError(f"class {cls} not in 0..{self.num_classes - 1}")
        r = self._region(region)
        if log_normalizer is not None:
            rows, cols = range(r.top, r.bottom, step), range(r.left, r.right, step)
            with torch.inference_mode():
                if self.upsampler.learned:  # a learned kernel mixes the classes
                    s = self.upsampler(self.fused, rows, cols)[cls]
                else:
                    s = self.upsampler(self.fused[cls:cls + 1], rows, cols)[0]
                return torch.exp(s - torch.from_numpy(log_normalizer)).numpy()
        out = np.empty(self._shape(r, step), dtype=np.float32)
        for i0, i1, s in self._bands(r, step):
            out[i0:i1] = torch.softmax(s, 0)[cls].numpy()
        return out

    def log_normalizer(self, region: Region | None = None, step: int = 1) -> np.ndarray:
        """``log(sum_c exp(score_c))`` ``(h, w)`` float32 over ``region``: with it, any one
        class's probability is ``exp(score - log_normalizer)``."""
        r = self._region(region)
        out = np.empty(self._shape(r, step), dtype=np.float32)
        for i0, i1, s in self._bands(r, step):
            out[i0:i1] = torch.logsumexp(s, 0).numpy()
        return out

    def entropy(self, region: Region | None = None, step: int = 1) -> np.ndarray:
        """Normalized entropy ``(h, w)`` float32 in [0, 1] over ``region``."""
        r = self._region(region)
        out = np.empty(self._shape(r, step), dtype=np.float32)
        for i0, i1, s in self._bands(r, step):
            out[i0:i1] = summarize_scores(s)[2].numpy()
        return out

    def at(self, y: int, x: int) -> np.ndarray:
        """All classes' probabilities ``(C,)`` at one pixel."""
        return self.probabilities(Region(y, x, y + 1, x + 1))[:, 0, 0]

    # ------------------------------------------------------------------ streaming

    def finish(self, region: Region) -> torch.Tensor:
        """Compute labels and confidence of ``region`` from the (complete) fused map there and
        add it to the whole-image sums; return its labels ``(h, w)`` (int64)."""
        labels = []
        _, xs = region.slices()
        c = self.num_classes
        log_c = math.log(c) if c > 1 else 1.0
        for i0, i1, s in self._bands(region, 1):
            # summarize_scores' sums, with fewer passes over the classes
            top = s.amax(0)
            s = s - top  # <= 0, contiguous (for the dot product)
            e = torch.exp(s)  # exactly 1 at the classes of the maximum
            lab = _first_max(e)
            z = e.sum(0)
            conf = z.reciprocal_()
            e.mul_(conf)
            entropy = float(torch.log(conf).sum(dtype=torch.float64).neg_()) - float(
                torch.dot(e.view(-1), s.view(-1)))
            rows = slice(region.top + i0, region.top + i1)
            torch.from_numpy(self.labels[rows, xs]).copy_(lab)
            torch.from_numpy(self.confidence[rows, xs]).copy_(conf)
            self.counts += np.bincount(self.labels[rows, xs].ravel(), minlength=c)[:c]
            self.confidence_sum += float(conf.sum(dtype=torch.float64))
            self.entropy_sum += max(0.0, entropy) / log_c
            labels.append(lab)
        self.pixels += region.area
        return torch.cat(labels, 0) if labels else torch.empty(0, region.width, dtype=torch.long)


def _first_max(e: torch.Tensor) -> torch.Tensor:
    """argmax over classes (the first of ties) of ``e = exp(scores - max)``: 1 exactly at
    the maxima, less elsewhere. Up to 24 classes as one matrix-vector product of the
    maxima's bits (torch's max over a leading dimension is several times slower)."""
    c = e.shape[0]
    if c > 24:
        return e.argmax(0)
    bits = 2.0 ** torch.arange(c - 1, -1, -1, dtype=e.dtype)
    key = torch.matmul(bits, torch.floor(e).view(c, -1))
    return (c - torch.frexp(key)[1].long()).view(e.shape[1:])


@dataclass
class Prediction:
    """The outputs of one image.

    Attributes:
        outputs: ``{variant: VariantOutput}`` in :data:`~core.variants.VARIANTS` order.
        image_size: ``(H, W)`` of the image predicted (for a preview: of its downscaled copy).
        device: the device that produced the result ("cuda:0", "cpu"...).
        seconds: wall time of the prediction (a batch's time is shared equally).
        tiled: whether the image was streamed in more than one band.
        messages: what went differently than asked (out-of-memory fallbacks, learned
            final upsamplers).
        source_size: ``(H, W)`` of the original image when this is a preview of a
            downscaled copy, else ``image_size``.
        finished: the regions whose results are final, in the order they were finished.
        disagreeing: pixels where the variants' labels differ, counted while streaming.
    """

    outputs: dict[str, VariantOutput]
    image_size: tuple[int, int]
    device: str
    seconds: float = 0.0
    tiled: bool = False
    messages: list[str] = field(default_factory=list)
    source_size: tuple[int, int] | None = None
    finished: list[Region] = field(default_factory=list)
    disagreeing: int = 0

    def __post_init__(self) -> None:
        if self.source_size is None:
            self.source_size = self.image_size

    def __getitem__(self, variant: str) -> VariantOutput:
        return self.outputs[variant]

    @property
    def variants(self) -> tuple[str, ...]:
        """The variants predicted."""
        return tuple(self.outputs)

    @property
    def is_preview(self) -> bool:
        """Whether this predicts a downscaled copy of the image (see :attr:`source_size`)."""
        return self.source_size != self.image_size

    @property
    def nbytes(self) -> int:
        """Bytes held by all outputs."""
        return sum(out.nbytes for out in self.outputs.values())

    def disagreement(self, region: Region | None = None) -> np.ndarray:
        """``(h, w)`` bool: pixels of ``region`` (None: the image) where the variants' labels
        are not all equal."""
        r = Region.whole(self.image_size) if region is None else region.clip(self.image_size)
        ys, xs = r.slices()
        outs = list(self.outputs.values())
        differ = np.zeros((r.height, r.width), dtype=bool)
        for other in outs[1:]:
            differ |= other.labels[ys, xs] != outs[0].labels[ys, xs]
        return differ

    @property
    def disagreement_fraction(self) -> float:
        """Fraction of the pixels where the variants differ (counted while streaming)."""
        pixels = next(iter(self.outputs.values())).pixels if self.outputs else 0
        return self.disagreeing / max(1, pixels)
