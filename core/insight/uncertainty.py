"""Per-pixel uncertainty that tells the user where to look, from cheap sources.

Every source is a map in [0, 1] over the image (1 = most uncertain), computed from cached
trunk features (:class:`~core.insight.features.TrunkFeatures`):

* ``entropy``: the softmax entropy of the prediction, divided by ``log C`` (free).
* ``mc_entropy`` and ``mc_mutual_information``: Monte Carlo dropout (Gal & Ghahramani,
  2016). The FCN's dropout layers sit on fc6 and fc7, so each sample drops units of the
  cached fc6 activation (``drop6``), reruns fc7 and drops again (``drop7``), then the heads:
  the trunk never runs again. The entropy of the mean prediction, and the mutual information
  between the prediction and the dropped units (the part of it that comes from the model's
  own uncertainty, BALD), both divided by ``log C``.
* ``flip``: test-time augmentation with the mirrored image (one more trunk pass): the total
  variation distance between the prediction and the mirrored image's prediction mirrored
  back.
* ``variants``: where FCN-32s, 16s and 8s disagree: the Jensen-Shannon divergence of their
  three predictions, divided by ``log 3``.

:meth:`Uncertainty.combined` averages chosen maps. :mod:`core.insight.regions` turns a map
into ranked regions and an image score.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from core.insight.features import TrunkFeatures, fast_upsampling, trunk_features
from core.models.fcn import FCN
from core.variants import VARIANTS

__all__ = ["COMBINED", "SOURCES", "Uncertainty", "UncertaintyConfig", "estimate_uncertainty"]

SOURCES: tuple[str, ...] = ("entropy", "mc_entropy", "mc_mutual_information", "flip",
                            "variants")
"""Every map :func:`estimate_uncertainty` can compute."""
COMBINED: tuple[str, ...] = ("mc_entropy", "flip", "variants")
"""The sources :meth:`Uncertainty.combined` averages by default."""


@dataclass(frozen=True)
class UncertaintyConfig:
    """How to estimate uncertainty.

    Attributes:
        variant: The output the user corrects.
        mc_samples: Monte Carlo dropout samples.
        dropout: Dropout probability of the samples (None: the model's own, as trained).
        seed: Seeds the dropout masks (the same image gives the same maps).
    """

    variant: str = "8s"
    mc_samples: int = 16
    dropout: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}")
        if self.mc_samples < 2:
            raise ValueError("mc_samples must be at least 2")
        if self.dropout is not None and not 0 < self.dropout < 1:
            raise ValueError(f"dropout must be in (0, 1), not {self.dropout}")


@dataclass
class Uncertainty:
    """The uncertainty maps of one image.

    Attributes:
        labels: ``(H, W)`` int64: the plain prediction of the variant.
        maps: ``{source: (H, W) float32 in [0, 1]}``.
        seconds: ``{source: seconds}`` spent on each.
    """

    labels: np.ndarray
    maps: dict[str, np.ndarray]
    seconds: dict[str, float] = field(default_factory=dict)

    def combined(self, sources: Sequence[str] = COMBINED) -> np.ndarray:
        """The mean of the chosen maps (those computed; all of them if none is)."""
        chosen = [self.maps[s] for s in sources if s in self.maps] or list(self.maps.values())
        return np.mean(chosen, axis=0).astype(np.float32)


def _entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy over the class axis 0 of ``(C, H, W)`` probabilities."""
    return -(p * torch.log(p.clamp_min(1e-12))).sum(0)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.clamp(0, 1).float().cpu().numpy()


def estimate_uncertainty(model: FCN, x: torch.Tensor | None = None, *,
                         features: TrunkFeatures | None = None,
                         flipped: TrunkFeatures | None = None,
                         sources: Sequence[str] = SOURCES,
                         config: UncertaintyConfig | None = None) -> Uncertainty:
    """Compute the requested uncertainty maps of one image.

    Args:
        model: The FCN (its mode is not changed: dropout is applied only by the samples).
        x: The normalized ``(1, 3, H, W)`` input; needed unless ``features`` (and, for
            ``flip``, ``flipped``) are given.
        features: Cached trunk features of ``x``.
        flipped: Cached trunk features of ``x.flip(-1)``.
        sources: Which of :data:`SOURCES`.
        config: Variant, samples, dropout, seed.

    Raises:
        ValueError: An unknown source, or neither an input nor the features needed.
    """
    config = config or UncertaintyConfig()
    wanted = set(sources)
    if wanted - set(SOURCES):
        raise ValueError(f"unknown uncertainty sources {sorted(wanted - set(SOURCES))}")
    if features is None:
        if x is None:
            raise ValueError("give the input or its trunk features")
        features = trunk_features(model, x)
    up = fast_upsampling(model)
    v = config.variant
    n_classes = model.config.num_classes
    log_c = math.log(max(2, n_classes))
    maps: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    with torch.no_grad():
        t0 = time.perf_counter()
        outs = features.scores(model, VARIANTS if "variants" in wanted else (v,), up)
        probs = {k: o[0].softmax(0) for k, o in outs.items()}
        p = probs[v]
        labels = p.argmax(0).cpu().numpy()
        if "entropy" in wanted:
            maps["entropy"] = _np(_entropy(p) / log_c)
        seconds["entropy"] = time.perf_counter() - t0
        if "variants" in wanted:
            t0 = time.perf_counter()
            stack = torch.stack([probs[k] for k in VARIANTS])
            js = _entropy(stack.mean(0)) - torch.stack([_entropy(q) for q in stack]).mean(0)
            maps["variants"] = _np(js / math.log(len(VARIANTS)))
            seconds["variants"] = time.perf_counter() - t0
        if wanted & {"mc_entropy", "mc_mutual_information"}:
            t0 = time.perf_counter()
            gen = torch.Generator(device=features.fc6.device).manual_seed(config.seed)
            total = torch.zeros_like(p)
            mean_entropy = torch.zeros_like(p[0])
            for _ in range(config.mc_samples):
                q = features.scores(model, (v,), up, dropout=gen, p=config.dropout)[v][0]
                q = q.softmax(0)
                total += q
                mean_entropy += _entropy(q)
            mean = total / config.mc_samples
            predictive = _entropy(mean)
            if "mc_entropy" in wanted:
                maps["mc_entropy"] = _np(predictive / log_c)
            if "mc_mutual_information" in wanted:
                mi = predictive - mean_entropy / config.mc_samples
                maps["mc_mutual_information"] = _np(mi.clamp_min(0) / log_c)
            seconds["mc_dropout"] = time.perf_counter() - t0
        if "flip" in wanted:
            t0 = time.perf_counter()
            if flipped is None:
                if x is None:
                    raise ValueError("the flip source needs the input or its mirrored features")
                flipped = trunk_features(model, x.flip(-1))
            q = flipped.scores(model, (v,), up)[v][0].flip(-1).softmax(0)
            maps["flip"] = _np(0.5 * (p - q).abs().sum(0))
            seconds["flip"] = time.perf_counter() - t0
    return Uncertainty(labels, {s: maps[s] for s in SOURCES if s in maps}, seconds)
