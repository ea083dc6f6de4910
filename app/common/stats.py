"""Per-variant statistics, reference metrics and the hover readout (Qt-free)."""

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


def confusion(truth: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C, C)`` pixel counts, rows = truth, columns = prediction; void (255) ignored.

    The same matrix as :func:`core.metrics.confusion_matrix`, with numpy only (fast on a CPU).

    Raises:
        ValueError: A truth or predicted label (other than void) is not a class.
    """
    truth, pred = truth.ravel(), pred.ravel()
    valid = truth != 255
    t, p = truth[valid].astype(np.int64), pred[valid].astype(np.int64)
    n = int(num_classes)
    for name, labels in (("Truth", t), ("Predicted", p)):
        if labels.size and labels.max() >= n:
            bad = np.unique(labels[labels >= n])[:10].tolist()
            raise ValueError(f"{name} labels outside 0..{n - 1} (and 255): {bad}")
    return np.bincount(t * n + p, minlength=n * n).reshape(n, n)


def reference_metrics(
    labels: np.ndarray, reference: np.ndarray, num_classes: int
) -> dict[str, Any]:
    """The four metrics of ``labels`` against ``reference`` (void 255 ignored).

    Raises:
        ValueError: The reference has labels outside the model's classes.
    """
    from core.metrics import segmentation_scores

    return segmentation_scores(confusion(reference, labels, num_classes))


class MaskScores:
    """Metrics of predictions against a mask that is being corrected, kept current cheaply.

    Holds one confusion matrix per prediction and a copy of the mask as last scored;
    :meth:`update` compares the mask with that copy and moves only the changed pixels
    between confusion cells, so a stroke on a 4096x4096 mask costs a comparison, not a
    recount. Qt-free.

    Raises:
        ValueError: (construction) a mask or predicted label outside the classes.
    """

    def __init__(self, truth: np.ndarray, predictions: dict[str, np.ndarray],
                 num_classes: int) -> None:
        self.num_classes = int(num_classes)
        self.predictions = predictions
        self._scored = truth.copy()
        self.confusions = {k: confusion(truth, p, self.num_classes)
                           for k, p in predictions.items()}

    def update(self, truth: np.ndarray) -> int:
        """Take the mask's current pixels into account; returns how many changed.

        Raises:
            ValueError: a changed pixel has a label outside the classes.
        """
        changed = np.flatnonzero(truth.ravel() != self._scored.ravel())
        if changed.size == 0:
            return 0
        old, new = self._scored.ravel()[changed], truth.ravel()[changed]
        deltas = {}
        for key, pred in self.predictions.items():
            p = pred.ravel()[changed]
            deltas[key] = (confusion(new, p, self.num_classes)
                           - confusion(old, p, self.num_classes))
        for key, delta in deltas.items():
            self.confusions[key] += delta
        self._scored.ravel()[changed] = new
        return int(changed.size)

    def metrics(self) -> dict[str, dict[str, Any]]:
        """The four metrics (and per-class IU) of each prediction."""
        from core.metrics import segmentation_scores

        return {k: segmentation_scores(c) for k, c in self.confusions.items()}


def image_stats(prediction: Any, reference: np.ndarray | None, num_classes: int) -> ImageStats:
    """Statistics of every variant of a prediction (metrics when there is a reference)."""
    stats: dict[str, VariantStats] = {}
    problem = ""
    for variant, out in prediction.outputs.items():
        counts = np.bincount(out.labels.ravel(), minlength=num_classes)[:num_classes]
        share = counts / max(1, out.labels.size)
        metrics = None
        if reference is not None and not problem:
            try:
                metrics = reference_metrics(out.labels, reference, num_classes)
            except ValueError as exc:
                problem = f"The reference mask does not fit the model: {exc}"
        stats[variant] = VariantStats(
            variant=variant,
            mean_confidence=float(out.confidence.mean(dtype=np.float64)),
            mean_entropy=float(out.entropy.mean(dtype=np.float64)),
            classes_present=int((share > 0).sum()),
            share=share,
            metrics=metrics,
        )
    differ = float(prediction.disagreement().mean(dtype=np.float64))
    return ImageStats(stats, differ, problem)


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
            p = float(out.probs[label, y, x])
            parts.append(f"{variant}: {class_name(names, label)} {p:.2f}")
    if reference is not None:
        parts.append(f"reference: {class_name(names, int(reference[y, x]))}")
    return "  ·  ".join(parts)
