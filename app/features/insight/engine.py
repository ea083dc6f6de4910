"""InsightEngine: the insight computations on a model and an image, with their caches.

Only the insight worker's thread uses it, and the worker imports this module (and so torch
and :mod:`core.insight`) on its first job: nothing here runs on the GUI thread or before the
window is painted. The engine loads its own copy of the model from the checkpoint (the
inference thread keeps its own), keeps each image's trunk features (``TrunkFeatures``:
pool3, pool4, fc6) per image and model id, and the last stream decomposition, so switching
classes, maps or pixels reruns nothing heavy.

Streams, uncertainty and fc-as-conv run on a copy of at most :data:`MAX_SIDE` pixels on its
long side. The effective receptive field runs on the image itself: on a crop holding every
variant's theoretical field and aligned to the trunk's stride, whose gradients are exactly
those of the whole image (no pixel outside a field reaches the output, and the aligned crop
keeps every pooling grid where it was).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from app.features.insight.cache import ByteLRU
from app.features.insight.results import (
    MAX_SIDE,
    ClassMaps,
    ErfResult,
    FcConvResult,
    PixelResult,
    RegionInfo,
    Scale,
    ScoreResult,
    SkipSummary,
    StreamsResult,
    Target,
    UncertaintyResult,
    analysis_size,
)

Check = Callable[[], None]
"""Raises ``core.errors.Cancelled`` when the job was cancelled."""
Report = Callable[[float, str], None]
"""Reports a fraction done and what runs now."""

FEATURE_BUDGET = 768 << 20
"""Bytes of trunk features kept (a full-width VGG16 at 1024 px: about 55 MB an image)."""
DECOMPOSITION_BUDGET = 768 << 20
"""A stream decomposition larger than this (many classes, a large copy) is not kept: each
class switch then reruns the heads on the cached features."""
MAX_CROPS = 36
"""fc as conv: the whole network runs on at most this many 224 crops (evenly spread)."""
UNCERTAINTY_VARIANT = "8s"
"""The output the uncertainty maps are about (the one the user corrects)."""
SKIP_VARIANTS = {"pool4": ("32s", "16s"), "pool3": ("16s", "8s")}


def _nbytes(obj: Any) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(v) for v in obj)
    if hasattr(obj, "__dataclass_fields__"):
        return sum(_nbytes(getattr(obj, f)) for f in obj.__dataclass_fields__)
    return 0


def downscale(rgb: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """``rgb`` resized (area filter) to :func:`analysis_size`."""
    h, w = analysis_size(*rgb.shape[:2], max_side)
    if (h, w) == rgb.shape[:2]:
        return rgb
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)


def spread(rows: int, cols: int, limit: int) -> list[tuple[int, int]]:
    """At most ``limit`` cells of a ``rows x cols`` grid, evenly spread, corners included."""
    if rows * cols <= limit:
        return [(i, j) for i in range(rows) for j in range(cols)]
    n_rows = max(1, min(rows, round((limit * rows / cols) ** 0.5)))
    n_cols = max(1, min(cols, limit // n_rows))
    ii = sorted({round(v) for v in np.linspace(0, rows - 1, n_rows)})
    jj = sorted({round(v) for v in np.linspace(0, cols - 1, n_cols)})
    return [(i, j) for i in ii for j in jj]


@dataclass
class Analysis:
    """The analysed copy of an image and its scale."""

    rgb: np.ndarray
    scale: Scale


@dataclass
class Decomposition:
    """A core ``StreamDecomposition`` and its skip summaries."""

    streams: Any
    skips: dict[str, SkipSummary]


class InsightEngine:
    """Computes every insight job kind; caches models, copies, features, decompositions."""

    def __init__(self, feature_budget: int = FEATURE_BUDGET,
                 decomposition_budget: int = DECOMPOSITION_BUDGET) -> None:
        """Hold nothing yet."""
        self._models: dict[str, tuple[Any, Any]] = {}
        self._copies: ByteLRU[str, Analysis] = ByteLRU(256 << 20, _nbytes, max_items=4)
        self._features: ByteLRU[tuple, Any] = ByteLRU(feature_budget, _nbytes)
        self._decompositions: ByteLRU[tuple, Decomposition] = ByteLRU(
            decomposition_budget, _nbytes, max_items=1)

    # ------------------------------------------------------------------ inputs
    def model(self, target: Target) -> tuple[Any, Any]:
        """``(FCN in eval mode, ModelInfo)`` of the target's model (one kept at a time)."""
        found = self._models.get(target.model_id)
        if found is None:
            from core.checkpoints.checkpoint import load_checkpoint
            from core.inference.devices import pick_device

            self.forget(keep_model=None)
            model, info = load_checkpoint(target.checkpoint,
                                          device=pick_device(target.device or "auto"))
            found = self._models[target.model_id] = (model.eval(), info)
        return found

    def forget(self, keep_model: str | None = None) -> None:
        """Drop every model (but ``keep_model``) and what was computed with them."""
        for model_id in [m for m in self._models if m != keep_model]:
            del self._models[model_id]
        self._features.drop(lambda k: k[1] != keep_model)
        self._decompositions.drop(lambda k: k[1] != keep_model)

    def image(self, target: Target) -> np.ndarray:
        """The target's RGB image (read from its file when not given)."""
        if target.image is not None:
            return target.image
        from core.data.imageio import read_image

        if target.path is None:
            raise ValueError(f"{target.title or target.image_key}: no image and no file")
        return read_image(target.path)

    def analysis(self, target: Target) -> Analysis:
        """The analysed copy (at most :data:`MAX_SIDE` px on its long side)."""
        found = self._copies.get(target.image_key)
        if found is None:
            rgb = self.image(target)
            small = np.ascontiguousarray(downscale(rgb))
            found = Analysis(small, Scale(small.shape[:2], rgb.shape[:2]))
            self._copies.put(target.image_key, found)
        return found

    def input(self, target: Target) -> torch.Tensor:
        """The analysed copy as the model's normalized input, on its device."""
        from core.insight.features import image_tensor

        model, info = self.model(target)
        device = next(model.parameters()).device
        return image_tensor(self.analysis(target).rgb, info.preprocessing, device)

    def features(self, target: Target, *, keep: bool = True) -> Any:
        """The trunk features of the analysed copy (cached per image and model id)."""
        key = (target.image_key, target.model_id)
        found = self._features.get(key)
        if found is None:
            from core.insight.features import trunk_features

            model, _ = self.model(target)
            found = trunk_features(model, self.input(target))
            if keep:
                self._features.put(key, found)
        return found

    def has_features(self, target: Target) -> bool:
        """Whether the target's trunk features are cached."""
        return (target.image_key, target.model_id) in self._features

    def geometry(self, target: Target) -> Any:
        """An FCN of the target's architecture without weights (on the meta device): what
        ``core.insight.receptive.receptive_fields`` reads, shareable with the GUI thread."""
        from core.models.fcn import FCN

        _, info = self.model(target)
        return FCN(info.config, device="meta").eval()

    # ------------------------------------------------------------------ streams
    def decomposition(self, target: Target, check: Check) -> Decomposition:
        """The stream decomposition of the analysed copy (the last one is kept)."""
        key = (target.image_key, target.model_id)
        found = self._decompositions.get(key)
        if found is None:
            from core.insight.features import fast_upsampling
            from core.insight.streams import decompose, skip_changes

            model, _ = self.model(target)
            feats = self.features(target)
            check()
            streams = decompose(model, feats, upsampling=fast_upsampling(model))
            check()
            skips = {name: SkipSummary(
                name, s.coarse, s.fine, s.changed, s.magnitude.astype(np.float32),
                s.after.astype(np.uint8), s.changed_fraction)
                for name, s in skip_changes(streams).items()}
            found = Decomposition(streams, skips)
            self._decompositions.put(key, found)
        return found

    def streams(self, target: Target, cls: int, check: Check) -> StreamsResult:
        """Skips, residuals and class ``cls``'s maps."""
        d = self.decomposition(target, check)
        residuals = {v: d.streams.residual(v) for v in d.streams.terms}
        return StreamsResult(self.analysis(target).scale, d.skips, residuals,
                             self._class_maps(d, cls))

    def class_maps(self, target: Target, cls: int, check: Check) -> ClassMaps:
        """Class ``cls``'s term, output and skip maps."""
        return self._class_maps(self.decomposition(target, check), cls)

    @staticmethod
    def _class_maps(d: Decomposition, cls: int) -> ClassMaps:
        def one(t: torch.Tensor) -> np.ndarray:
            return t[cls].detach().float().cpu().numpy()

        s = d.streams
        terms = {v: {name: one(t) for name, t in s.terms[v].items()}
                 for v in ("16s", "8s") if v in s.terms}
        outputs = {v: one(o) for v, o in s.outputs.items()}
        deltas = {skip: outputs[fine] - outputs[coarse]
                  for skip, (coarse, fine) in SKIP_VARIANTS.items()
                  if coarse in outputs and fine in outputs}
        return ClassMaps(int(cls), terms, outputs, deltas)

    def pixel(self, target: Target, y: int, x: int, check: Check) -> PixelResult:
        """Every class's logit at analysed pixel ``(y, x)``, by stream."""
        b = self.decomposition(target, check).streams.at(y, x)
        return PixelResult(b.y, b.x, b.terms, b.totals, b.labels)

    # ------------------------------------------------------------------ uncertainty
    def uncertainty(self, target: Target, check: Check, report: Report, *,
                    keep: bool = True) -> UncertaintyResult:
        """Every uncertainty source (and their mean, "combined"), regions and scores."""
        from core.insight.features import trunk_features
        from core.insight.regions import image_score, rank_regions
        from core.insight.uncertainty import Uncertainty, UncertaintyConfig, estimate_uncertainty

        model, _ = self.model(target)
        config = UncertaintyConfig(variant=UNCERTAINTY_VARIANT)
        if not self.has_features(target):
            report(0.05, "trunk features")
        feats = self.features(target, keep=keep)
        check()
        report(0.3, "entropy, 32s/16s/8s disagreement")
        base = estimate_uncertainty(model, features=feats, sources=("entropy", "variants"),
                                    config=config)
        check()
        report(0.4, f"MC dropout ({config.mc_samples} samples)")
        mc = estimate_uncertainty(model, features=feats, config=config,
                                  sources=("mc_entropy", "mc_mutual_information"))
        check()
        report(0.7, "flip TTA (the mirrored image's trunk)")
        t0 = time.perf_counter()
        flipped = trunk_features(model, self.input(target).flip(-1))
        check()
        flip = estimate_uncertainty(model, features=feats, flipped=flipped, sources=("flip",),
                                    config=config)
        maps = {**base.maps, **mc.maps, **flip.maps}
        maps["combined"] = Uncertainty(base.labels, maps).combined()
        seconds = {"entropy": base.seconds.get("entropy", 0.0),
                   "variants": base.seconds.get("variants", 0.0),
                   "mc_dropout": mc.seconds.get("mc_dropout", 0.0),
                   "flip": time.perf_counter() - t0}
        report(0.95, "ranking regions")
        labels = base.labels.astype(np.uint8)
        regions = {s: [_region(r) for r in rank_regions(m, labels)] for s, m in maps.items()}
        scores = {s: image_score(m) for s, m in maps.items()}
        return UncertaintyResult(self.analysis(target).scale, config.variant, labels, maps,
                                 regions, scores, seconds)

    def score(self, target: Target, check: Check, report: Report) -> ScoreResult:
        """An image's uncertainty scores (its features are not kept unless they were)."""
        result = self.uncertainty(target, check, report, keep=self.has_features(target))
        return ScoreResult(target.image_key, target.model_id, result.scores, result)

    # ------------------------------------------------------------------ fc as conv
    def fc_conv(self, target: Target, check: Check, report: Report,
                max_crops: int = MAX_CROPS) -> FcConvResult:
        """The dense score map beside the classifier on every 224 window, and the whole
        network on up to ``max_crops`` of those windows."""
        from core.insight.fc_conv import STRIDE, WHY, WINDOW, compare_fc_conv

        model, info = self.model(target)
        scale = self.analysis(target).scale
        width = float(info.config.width)
        fc6 = tuple(int(n) for n in model.fc6.weight.shape)
        h, w = scale.size
        if h < WINDOW or w < WINDOW:
            return FcConvResult(scale, None, None, width=width, fc6=fc6, why=WHY,
                                window=WINDOW, stride=STRIDE, note=(
                f"The image ({w}×{h}) is smaller than one {WINDOW}×{WINDOW} window: the "
                "classifier has no window to slide over."))
        x = self.input(target)
        report(0.05, "dense map and the classifier on every window")
        with torch.no_grad():
            cmp = compare_fc_conv(model, x)
        dense = cmp.dense.float().numpy()
        rows, cols = (h - WINDOW) // STRIDE + 1, (w - WINDOW) // STRIDE + 1
        picks = spread(rows, cols, max_crops)
        crops: dict[tuple[int, int], np.ndarray] = {}
        for n, (i, j) in enumerate(picks):
            check()
            report(0.15 + 0.85 * n / len(picks), f"whole network on crop {n + 1}/{len(picks)}")
            window = x[..., STRIDE * i: STRIDE * i + WINDOW, STRIDE * j: STRIDE * j + WINDOW]
            with torch.no_grad():
                crops[(i, j)] = compare_fc_conv(model, window).dense[:, 0, 0].float().numpy()
        diffs = [float(np.abs(dense[:, i, j] - v).max()) for (i, j), v in crops.items()]
        agree = [int(np.argmax(dense[:, i, j]) == np.argmax(v)) for (i, j), v in crops.items()]
        return FcConvResult(scale, dense, cmp.slid.float().numpy(), float(cmp.max_difference),
                            crops, rows * cols, max(diffs) if diffs else None,
                            float(np.mean(agree)) if agree else None, width, fc6, WHY,
                            WINDOW, STRIDE)

    # ------------------------------------------------------------------ receptive fields
    def erf(self, target: Target, y: int, x: int, check: Check) -> ErfResult:
        """The effective receptive fields of image pixel ``(y, x)`` for 32s, 16s and 8s."""
        from core.insight.fc_conv import STRIDE
        from core.insight.features import image_tensor
        from core.insight.receptive import (
            effective_receptive_fields,
            mass_box,
            receptive_fields,
        )

        model, info = self.model(target)
        rgb = self.image(target)
        size = rgb.shape[:2]
        fields = receptive_fields(model, y, x, size)
        union = None
        for f in fields.values():
            union = f.box if union is None else union.union(f.box)
        assert union is not None
        x0, y0 = union.x0 // STRIDE * STRIDE, union.y0 // STRIDE * STRIDE
        crop = np.ascontiguousarray(rgb[y0:union.y1, x0:union.x1])
        device = next(model.parameters()).device
        check()
        maps = effective_receptive_fields(model, image_tensor(crop, info.preprocessing, device),
                                          y - y0, x - x0)
        mass = {}
        for v, m in maps.items():
            b = mass_box(m)
            mass[v] = (b.x0 + x0, b.y0 + y0, b.x1 + x0, b.y1 + y0)
        return ErfResult(int(y), int(x), (x0, y0, union.x1, union.y1), maps,
                         {v: tuple(f.box) for v, f in fields.items()},  # type: ignore[misc]
                         {v: f.size for v, f in fields.items()}, mass)


def _region(r: Any) -> RegionInfo:
    b = r.region.bbox
    return RegionInfo((b.x0, b.y0, b.x1, b.y1), tuple(r.center), float(r.mass),  # type: ignore[arg-type]
                      float(r.mean), int(r.area), int(r.label))
