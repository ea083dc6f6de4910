"""Statistics, hover readout, documents and the document cache (no window)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.common.stats import confusion, hover_text, image_stats
from app.state.doc_cache import DocumentCache
from app.state.document import ImageDocument


class _Out:
    def __init__(self, labels: np.ndarray, classes: int) -> None:
        h, w = labels.shape
        self.labels = labels
        self.probs = np.full((classes, h, w), 1.0 / classes, np.float16)
        self.confidence = np.full((h, w), 0.5, np.float32)
        self.entropy = np.full((h, w), 0.25, np.float32)


class _Pred:
    def __init__(self, outputs: dict[str, _Out]) -> None:
        self.outputs = outputs

    def disagreement(self) -> np.ndarray:
        outs = list(self.outputs.values())
        return np.any([o.labels != outs[0].labels for o in outs[1:]], axis=0)


def test_confusion_matches_the_core() -> None:
    from core.metrics import confusion_matrix

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 5, (40, 50), dtype=np.uint8)
    truth[:3] = 255
    pred = rng.integers(0, 5, (40, 50), dtype=np.uint8)
    np.testing.assert_array_equal(confusion(truth, pred, 5),
                                  confusion_matrix(truth, pred, 5).numpy())
    with pytest.raises(ValueError, match="Truth labels outside"):
        confusion(np.full((2, 2), 7, np.uint8), pred[:2, :2], 5)


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


def test_mask_scores_follow_edits_exactly() -> None:
    from app.common.stats import MaskScores, reference_metrics

    rng = np.random.default_rng(5)
    n = 6
    truth = rng.integers(0, n, (90, 120)).astype(np.uint8)
    truth[:5] = 255
    preds = {v: rng.integers(0, n, truth.shape).astype(np.uint8) for v in ("32s", "8s")}
    live = MaskScores(truth, preds, n)
    assert live.update(truth) == 0
    for step in range(30):
        y, x = rng.integers(0, 80), rng.integers(0, 110)
        value = 255 if step % 7 == 0 else int(rng.integers(0, n))
        truth[y:y + rng.integers(1, 10), x:x + rng.integers(1, 10)] = value
        live.update(truth)
        got = live.metrics()
        for v, p in preds.items():
            want = reference_metrics(p, truth, n)
            for key in ("pixel_acc", "mean_acc", "mean_iu", "fw_iu"):
                assert got[v][key] == pytest.approx(want[key], abs=1e-12)
    truth[0, 0] = n + 3
    with pytest.raises(ValueError, match="outside"):
        live.update(truth)
