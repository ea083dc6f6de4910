"""The FCN paper's four metrics: one confusion matrix, one scoring of predictions."""

from core.metrics.confusion import (
    ConfusionAccumulator,
    confusion_matrix,
    count_labels,
    scores_with_names,
    segmentation_scores,
)
from core.metrics.scoring import MaskScores, VariantScores, label_scores

__all__ = [
    "ConfusionAccumulator",
    "MaskScores",
    "VariantScores",
    "confusion_matrix",
    "count_labels",
    "label_scores",
    "scores_with_names",
    "segmentation_scores",
]
