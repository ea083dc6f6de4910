"""Per-variant statistics of a prediction and the hover readout (Qt-free; the metrics are
:mod:`core.metrics`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

METRIC_NAMES: tuple[tuple[str, str], ...] = (
    ("pixel_acc", "Pixel accuracy"),
    ("mean_acc", "Mean accuracy"),
    ("mean_iu", "Mean IU"),
    ("fw_iu", "f.w. IU"),
)
"""The FCN paper's four metrics: key and display name."""


@dataclass(frozen=True)
class VariantStats:
    """Summary of one variant's output on one image."""

    variant: str
    mean_confidence: float
    mean_entropy: float
    classes_present: int
    share: np.ndarray
    metrics: dict[str, Any] | None = None


@dataclass(frozen=True)
class ImageStats:
    """Statistics of one prediction: per variant, where the variants differ, and problems."""

    variants: dict[str, VariantStats]
    disagreement: float
    problem: str = ""


def image_stats(prediction: Any, reference: np.ndarray | None, num_classes: int) -> ImageStats:
    """Statistics of every variant of a prediction (metrics when there is a reference)."""
    from core.metrics import label_scores  # torch: not at start-up

    stats: dict[str, VariantStats] = {}
    problem = ""
    for variant, out in prediction.outputs.items():
        share = np.zeros(num_classes)
        kept = out.class_share()[:num_classes]  # counted while the prediction streamed
        share[: kept.size] = kept
        metrics = None
        if reference is not None and not problem:
            try:
                metrics = label_scores(out.labels, reference, num_classes)
            except ValueError as exc:
                problem = f"The reference mask does not fit the model: {exc}"
        stats[variant] = VariantStats(
            variant=variant,
            mean_confidence=float(out.mean_confidence),
            mean_entropy=float(out.mean_entropy),
            classes_present=int((share > 0).sum()),
            share=share,
            metrics=metrics,
        )
    return ImageStats(stats, float(prediction.disagreement_fraction), problem)


def class_name(names: Sequence[str], label: int) -> str:
    """A label's class name ('void' for 255, '#N' when unknown)."""
    if label == 255:
        return "void"
    return names[label] if 0 <= label < len(names) else f"#{label}"


def hover_text(
    image: np.ndarray,
    x: int,
    y: int,
    prediction: Any | None = None,
    names: Sequence[str] = (),
    reference: np.ndarray | None = None,
) -> str:
    """Status-bar readout for pixel (x, y): position, RGB, and each variant's class and p."""
    h, w = image.shape[:2]
    if not (0 <= x < w and 0 <= y < h):
        return ""
    r, g, b = (int(v) for v in image[y, x])
    parts = [f"x {x}, y {y}", f"RGB {r} {g} {b}"]
    if prediction is not None:
        for variant, out in prediction.outputs.items():
            label = int(out.labels[y, x])
            p = float(out.at(y, x)[label])
            parts.append(f"{variant}: {class_name(names, label)} {p:.2f}")
    if reference is not None:
        parts.append(f"reference: {class_name(names, int(reference[y, x]))}")
    return "  ·  ".join(parts)
