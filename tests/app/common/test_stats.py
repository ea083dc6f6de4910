"""Statistics, hover readout, documents and the document cache (no window)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.common.stats import hover_text, image_stats
from app.state.doc_cache import DocumentCache
from app.state.document import ImageDocument


class _Out:
    """A variant's output as the core gives it (labels, sums kept while streaming, the
    probabilities of a pixel on demand)."""

    def __init__(self, labels: np.ndarray, classes: int) -> None:
        self.labels = labels
        self.classes = classes
        self.mean_confidence = 0.5
        self.mean_entropy = 0.25

    def class_share(self) -> np.ndarray:
        return np.bincount(self.labels.ravel(), minlength=self.classes) / self.labels.size

    def at(self, y: int, x: int) -> np.ndarray:
        return np.full(self.classes, 1.0 / self.classes, np.float32)


class _Pred:
    def __init__(self, outputs: dict[str, _Out]) -> None:
        self.outputs = outputs

    @property
    def disagreement_fraction(self) -> float:
        outs = list(self.outputs.values())
        return float(np.any([o.labels != outs[0].labels for o in outs[1:]], axis=0).mean())


def test_image_stats_and_problem() -> None:
    a = np.zeros((4, 4), np.uint8)
    b = a.copy()
    b[0, 0] = 1
    pred = _Pred({"32s": _Out(a, 3), "16s": _Out(a, 3), "8s": _Out(b, 3)})
    stats = image_stats(pred, a, 3)
    assert stats.disagreement == pytest.approx(1 / 16)
    assert stats.variants["32s"].metrics["pixel_acc"] == 1.0
    assert stats.variants["8s"].metrics["pixel_acc"] == pytest.approx(15 / 16)
    assert stats.variants["8s"].classes_present == 2
    bad = image_stats(pred, np.full((4, 4), 9, np.uint8), 3)
    assert "does not fit the model" in bad.problem


def test_hover_text() -> None:
    image = np.zeros((4, 5, 3), np.uint8)
    pred = _Pred({"8s": _Out(np.ones((4, 5), np.uint8), 2)})
    text = hover_text(image, 2, 3, pred, ["bg", "cat"], np.full((4, 5), 255, np.uint8))
    assert text == "x 2, y 3  ·  RGB 0 0 0  ·  8s: cat 0.50  ·  reference: void"
    assert hover_text(image, 9, 9) == ""


def test_document_reference_must_fit() -> None:
    doc = ImageDocument(np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="5x4"):
        doc.set_reference(np.zeros((3, 3), np.uint8))
    doc.set_reference(np.zeros((4, 5), np.uint8))
    assert doc.reference is not None


def test_document_cache_evicts_least_recent(tmp_path: Path) -> None:
    cache = DocumentCache(budget_bytes=2 * 100 * 100 * 3)
    docs = [ImageDocument(np.zeros((100, 100, 3), np.uint8), tmp_path / f"{i}.png")
            for i in range(3)]
    for doc in docs[:2]:
        cache.put(doc)
    assert cache.get(tmp_path / "0.png") is docs[0]  # 0 becomes the most recent
    cache.put(docs[2])
    assert tmp_path / "1.png" not in cache
    assert len(cache) == 2 and cache.get(tmp_path / "0.png") is docs[0]
