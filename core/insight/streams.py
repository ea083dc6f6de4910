"""The fused FCN scores as exact sums of one upsampled term per score layer (skip streams).

FCN-16s is ``upscore16(upscore2(score_fr) + score_pool4)`` and FCN-8s
``upscore8(upscore_pool4(upscore2(score_fr) + score_pool4) + score_pool3)``. The
deconvolutions are linear and have no bias, so each output is the sum of one term per score
layer, each term that layer's scores (bias included) carried through the upsamplers after it:

* 16s = T16(score_fr) + T16(score_pool4)
* 8s = T8(score_fr) + T8(score_pool4) + T8(score_pool3)

Each term is one call of :meth:`core.models.fcn.FCN.heads` with ``streams`` naming its
layer, so there is no second skip fusion here: the terms sum to the model's output to float
rounding (the at-once 0.01 / 0.0001 scaling included). :class:`StreamDecomposition` holds the
terms as per-class maps, :meth:`StreamDecomposition.at` the per-pixel breakdown of every
class's logit by stream (the bars of a click), and :func:`skip_changes` what the pool4 skip
changed over 32s and what the pool3 skip changed over 16s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.insight.features import TrunkFeatures
from core.models.fcn import FCN, SCORE_LAYERS
from core.models.upsampling import Upsampling
from core.variants import VARIANTS

__all__ = [
    "VARIANT_STREAMS",
    "PixelBreakdown",
    "SkipChange",
    "StreamDecomposition",
    "decompose",
    "skip_changes",
]

VARIANT_STREAMS: dict[str, tuple[str, ...]] = {
    "32s": ("score_fr",),
    "16s": ("score_fr", "score_pool4"),
    "8s": SCORE_LAYERS,
}
"""The score layers (streams) whose terms make up each variant's output."""

SKIPS: dict[str, tuple[str, str, str]] = {
    "pool4": ("32s", "16s", "score_pool4"),
    "pool3": ("16s", "8s", "score_pool3"),
}
"""Each skip: the output before it, the output with it, and its stream."""


@dataclass(frozen=True)
class PixelBreakdown:
    """Every class's logit at one pixel, split by stream (the bars of a click).

    Attributes:
        y: Row of the pixel.
        x: Column of the pixel.
        terms: ``{variant: {stream: (C,) logits}}``; they sum to ``totals[variant]``.
        totals: ``{variant: (C,) logits}``, the model's output there.
        labels: ``{variant: winning class}``.
    """

    y: int
    x: int
    terms: dict[str, dict[str, np.ndarray]]
    totals: dict[str, np.ndarray]
    labels: dict[str, int]


@dataclass
class StreamDecomposition:
    """Outputs and their stream terms for one image (``(C, H, W)`` tensors on the model's
    device).

    Attributes:
        outputs: ``{variant: scores}`` as the model computes them.
        terms: ``{variant: {stream: scores}}`` for the variants decomposed; 32s has the one
            term ``score_fr`` (its output).
    """

    outputs: dict[str, torch.Tensor]
    terms: dict[str, dict[str, torch.Tensor]]

    def term(self, variant: str, stream: str) -> torch.Tensor:
        """One term as ``(C, H, W)`` per-class maps."""
        return self.terms[variant][stream]

    def residual(self, variant: str) -> float:
        """Largest ``|sum of terms - output|`` of ``variant`` (float rounding only)."""
        total = sum(self.terms[variant].values())
        return float((total - self.outputs[variant]).abs().max())

    def at(self, y: int, x: int) -> PixelBreakdown:
        """The breakdown of every class's logit at pixel ``(y, x)``, for each variant.

        Raises:
            IndexError: The pixel is outside the image.
        """
        h, w = next(iter(self.outputs.values())).shape[-2:]
        if not (0 <= y < h and 0 <= x < w):
            raise IndexError(f"pixel {(x, y)} is outside the {w}x{h} image")
        terms = {v: {s: t[:, y, x].detach().cpu().numpy() for s, t in ts.items()}
                 for v, ts in self.terms.items()}
        totals = {v: o[:, y, x].detach().cpu().numpy() for v, o in self.outputs.items()}
        labels = {v: int(np.argmax(t)) for v, t in totals.items()}
        return PixelBreakdown(int(y), int(x), terms, totals, labels)


def decompose(model: FCN, features: TrunkFeatures | dict[str, torch.Tensor],
              size: tuple[int, int] | None = None, *,
              variants: tuple[str, ...] = VARIANTS, upsampling: Upsampling | None = None,
              index: int = 0) -> StreamDecomposition:
    """Split each variant's output into its stream terms (one ``FCN.heads`` call per stream).

    Args:
        model: The FCN, in eval mode for the features' sake (dropout is not used here).
        features: Cached trunk features, or the dict ``FCN.heads`` takes
            (``model.features(x)``).
        size: The input's ``(H, W)`` (taken from ``features`` when it is
            :class:`~core.insight.features.TrunkFeatures`).
        variants: The outputs to compute and decompose.
        upsampling: How the deconvolutions are computed (default: the layers).
        index: Which image of the batch to keep.

    Raises:
        ValueError: No size, or an unknown variant.
    """
    if isinstance(features, TrunkFeatures):
        size = features.size if size is None else size
        feats = features.heads_input(model)
    else:
        feats = features
    if size is None:
        raise ValueError("the input size is needed with a feature dict")
    wanted = tuple(v for v in VARIANTS if v in set(variants))
    if set(variants) - set(VARIANTS):
        raise ValueError(f"unknown variants {sorted(set(variants) - set(VARIANTS))}")
    with torch.no_grad():
        full = model.heads(feats, size, wanted, upsampling)
        outputs = {v: o[index] for v, o in full.items()}
        terms: dict[str, dict[str, torch.Tensor]] = {v: {} for v in wanted}
        if "32s" in wanted:
            terms["32s"]["score_fr"] = outputs["32s"]
        for stream in SCORE_LAYERS:
            fine = tuple(v for v in ("16s", "8s") if v in wanted and stream in VARIANT_STREAMS[v])
            if not fine:
                continue
            part = model.heads(feats, size, fine, upsampling, streams=(stream,))
            for v in fine:
                terms[v][stream] = part[v][index]
    return StreamDecomposition(outputs, terms)


@dataclass(frozen=True)
class SkipChange:
    """What one skip changed: the output with it against the output before it.

    Attributes:
        skip: "pool4" (16s over 32s) or "pool3" (8s over 16s).
        coarse: The variant before the skip.
        fine: The variant with it.
        delta: ``(C, H, W)``: fine minus coarse scores, per class.
        term: ``(C, H, W)``: the skip's own stream term in the fine output.
        before: ``(H, W)`` int64 labels of the coarse output.
        after: ``(H, W)`` int64 labels of the fine output.
        changed: ``(H, W)`` bool: where the winning class changed.
        magnitude: ``(H, W)``: the largest ``|delta|`` over classes.
    """

    skip: str
    coarse: str
    fine: str
    delta: np.ndarray
    term: np.ndarray
    before: np.ndarray
    after: np.ndarray
    changed: np.ndarray
    magnitude: np.ndarray

    @property
    def changed_fraction(self) -> float:
        """Fraction of the pixels whose class the skip changed."""
        return float(self.changed.mean()) if self.changed.size else 0.0


def skip_changes(decomposition: StreamDecomposition) -> dict[str, SkipChange]:
    """``{"pool4": ..., "pool3": ...}``: each skip whose two variants were decomposed."""
    out: dict[str, SkipChange] = {}
    for skip, (coarse, fine, stream) in SKIPS.items():
        if coarse not in decomposition.outputs or fine not in decomposition.terms:
            continue
        a = decomposition.outputs[coarse].detach().cpu()
        b = decomposition.outputs[fine].detach().cpu()
        delta = (b - a).numpy()
        before, after = a.argmax(0).numpy(), b.argmax(0).numpy()
        out[skip] = SkipChange(
            skip, coarse, fine, delta, decomposition.terms[fine][stream].detach().cpu().numpy(),
            before, after, before != after, np.abs(delta).max(axis=0),
        )
    return out
