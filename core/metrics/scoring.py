"""Scoring predictions against reference masks: the one scoring of evaluate, fine-tune and the app.

:class:`VariantScores` sums one confusion matrix per variant over any number of images and
gives the paper's four metrics; :func:`label_scores` scores one label map; :class:`MaskScores`
keeps the scores of fixed predictions current while their reference mask is being edited.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from core.metrics.confusion import (
    ArrayLike,
    ConfusionAccumulator,
    confusion_matrix,
    scores_with_names,
    segmentation_scores,
)
from core.variants import VARIANTS

__all__ = ["MaskScores", "VariantScores", "label_scores"]


def label_scores(labels: ArrayLike, reference: ArrayLike, num_classes: int) -> dict[str, Any]:
    """The four metrics (and per-class IU) of ``labels`` against ``reference`` (void ignored).

    Raises:
        ValueError: The shapes differ, or a label is outside the classes.
    """
    return segmentation_scores(confusion_matrix(reference, labels, num_classes))


class VariantScores:
    """The metrics of each variant's predictions, summed over images.

    ``add(truth, outputs)`` takes a reference mask (void 255 ignored) and ``{variant: labels
    (H, W) or scores (C, H, W)}``, numpy or torch on any device; scores are reduced to their
    argmax class.
    """

    def __init__(self, class_names: Sequence[str], variants: Sequence[str] = VARIANTS) -> None:
        self.class_names = list(class_names)
        self.variants = [v for v in VARIANTS if v in set(variants)]
        self._acc = {v: ConfusionAccumulator(len(self.class_names)) for v in self.variants}
        self.images = 0

    def add(self, truth: ArrayLike, outputs: Mapping[str, ArrayLike]) -> None:
        """Add one image (see the class docstring).

        Raises:
            ValueError: A size or label that does not fit the classes.
        """
        for v in self.variants:
            out = outputs[v]
            if out.ndim == 3:
                out = out.argmax(0) if isinstance(out, torch.Tensor) else np.argmax(out, 0)
            self._acc[v].update(truth, out)
        self.images += 1

    def scores(self) -> dict[str, dict[str, Any]]:
        """``{variant: scores}`` with per-class IUs keyed by class name (the CLI's JSON)."""
        return {v: scores_with_names(self._acc[v].scores(), self.class_names)
                for v in self.variants}


class MaskScores:
    """Metrics of fixed predictions against a mask that is being corrected, kept current cheaply.

    Holds one confusion matrix per prediction and a copy of the mask as last scored;
    :meth:`update` compares the mask with that copy and moves only the changed pixels
    between confusion cells, so a stroke on a 4096x4096 mask costs a comparison, not a
    recount.

    Raises:
        ValueError: (construction) a mask or predicted label outside the classes.
    """

    def __init__(self, truth: np.ndarray, predictions: dict[str, np.ndarray],
                 num_classes: int) -> None:
        self.num_classes = int(num_classes)
        self.predictions = predictions
        self._scored = truth.copy()
        self.confusions = {k: confusion_matrix(truth, p, self.num_classes)
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
            deltas[key] = (confusion_matrix(new, p, self.num_classes)
                           - confusion_matrix(old, p, self.num_classes))
        for key, delta in deltas.items():
            self.confusions[key] += delta
        self._scored.ravel()[changed] = new
        return int(changed.size)

    def metrics(self) -> dict[str, dict[str, Any]]:
        """The four metrics (and per-class IU) of each prediction."""
        return {k: segmentation_scores(c) for k, c in self.confusions.items()}
