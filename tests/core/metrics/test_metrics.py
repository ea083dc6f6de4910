"""The FCN paper's metrics, checked against numbers computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.metrics import (
    ConfusionAccumulator,
    MaskScores,
    VariantScores,
    confusion_matrix,
    label_scores,
    scores_with_names,
    segmentation_scores,
)

# 3 classes, 2 x 3 pixels. (truth, pred) pairs: (0,0) (0,1) (1,1) / (1,1) (2,2) (2,0)
TRUTH = [[0, 0, 1], [1, 2, 2]]
PRED = [[0, 1, 1], [1, 2, 0]]
# n_ij (rows truth, cols pred):   t_i   sum_j n_ji (column sums)
#   [1 1 0]                       2     p = [2, 3, 1]
#   [0 2 0]                       2
#   [1 0 1]                       2
EXPECTED_CONF = [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
# pixel acc = (1 + 2 + 1) / 6 = 2/3
# mean acc  = (1/2 + 2/2 + 1/2) / 3 = 2/3
# IU_0 = 1 / (2 + 2 - 1) = 1/3,  IU_1 = 2 / (2 + 3 - 2) = 2/3,  IU_2 = 1 / (2 + 1 - 1) = 1/2
# mean IU = (1/3 + 2/3 + 1/2) / 3 = 1/2
# fw IU = (2 * 1/3 + 2 * 2/3 + 2 * 1/2) / 6 = 3/6 = 1/2
EXPECTED = {
    "pixel_acc": 2 / 3,
    "mean_acc": 2 / 3,
    "mean_iu": 0.5,
    "fw_iu": 0.5,
    "per_class_iu": [1 / 3, 2 / 3, 1 / 2],
}


def _check(scores: dict, expected: dict) -> None:
    for key in ("pixel_acc", "mean_acc", "mean_iu", "fw_iu"):
        assert isinstance(scores[key], float)
        assert scores[key] == pytest.approx(expected[key]), key
    assert len(scores["per_class_iu"]) == len(expected["per_class_iu"])
    for got, want in zip(scores["per_class_iu"], expected["per_class_iu"], strict=True):
        if want is None:
            assert got is None
        else:
            assert got == pytest.approx(want)


def test_hand_computed_torch() -> None:
    conf = confusion_matrix(torch.tensor(TRUTH), torch.tensor(PRED), 3)
    assert conf.dtype == torch.int64
    assert conf.tolist() == EXPECTED_CONF
    _check(segmentation_scores(conf), EXPECTED)


def test_hand_computed_numpy_uint8() -> None:
    conf = confusion_matrix(np.array(TRUTH, np.uint8), np.array(PRED, np.uint8), 3)
    assert isinstance(conf, torch.Tensor)
    assert conf.tolist() == EXPECTED_CONF
    _check(segmentation_scores(conf.numpy()), EXPECTED)


def test_mixed_numpy_and_torch_stays_on_tensor_device() -> None:
    conf = confusion_matrix(np.array(TRUTH), torch.tensor(PRED), 3)
    assert conf.device == torch.device("cpu")
    assert conf.tolist() == EXPECTED_CONF


def test_void_pixels_are_ignored() -> None:
    # Two extra void pixels, predicted as 2 and 0: the matrix must not change.
    truth = torch.tensor([[0, 0, 1, 255], [1, 2, 2, 255]])
    pred = torch.tensor([[0, 1, 1, 2], [1, 2, 0, 0]])
    conf = confusion_matrix(truth, pred, 3)
    assert conf.tolist() == EXPECTED_CONF
    _check(segmentation_scores(conf), EXPECTED)


def test_class_absent_from_truth_and_prediction_is_excluded() -> None:
    # Same pixels with 4 classes: class 3 never appears, so its IU is None and the
    # means are those of the 3-class example.
    conf = confusion_matrix(torch.tensor(TRUTH), torch.tensor(PRED), 4)
    expected = dict(EXPECTED, per_class_iu=[1 / 3, 2 / 3, 1 / 2, None])
    _check(segmentation_scores(conf), expected)


def test_class_only_predicted_counts_with_iu_zero() -> None:
    # truth [0 0], pred [0 1]: n = [[1 1], [0 0]], t = [2, 0], p = [1, 1]
    # IU_0 = 1 / (2 + 1 - 1) = 1/2, IU_1 = 0 / (0 + 1 - 0) = 0, mean IU = 1/4
    # mean acc only over class 0 (t_1 = 0): 1/2; pixel acc 1/2
    # fw IU = (2 * 1/2 + 0 * 0) / 2 = 1/2
    conf = confusion_matrix(np.array([0, 0]), np.array([0, 1]), 2)
    _check(
        segmentation_scores(conf),
        {"pixel_acc": 0.5, "mean_acc": 0.5, "mean_iu": 0.25, "fw_iu": 0.5,
         "per_class_iu": [0.5, 0.0]},
    )


def test_empty_confusion_gives_zeros() -> None:
    conf = confusion_matrix(np.full((2, 2), 255), np.zeros((2, 2), int), 3)
    assert conf.sum() == 0
    scores = segmentation_scores(conf)
    assert scores == {
        "pixel_acc": 0.0, "mean_acc": 0.0, "mean_iu": 0.0, "fw_iu": 0.0,
        "per_class_iu": [None, None, None],
    }


def test_perfect_prediction() -> None:
    truth = np.array([[0, 1], [2, 2]])
    scores = segmentation_scores(confusion_matrix(truth, truth, 3))
    assert scores["pixel_acc"] == scores["mean_acc"] == scores["mean_iu"] == 1.0
    assert scores["fw_iu"] == 1.0


def test_bad_labels_and_shapes() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 3)
    with pytest.raises(ValueError, match="Truth labels"):
        confusion_matrix(np.array([5]), np.array([0]), 3)
    with pytest.raises(ValueError, match="Predicted labels"):
        confusion_matrix(np.array([0]), np.array([3]), 3)


def test_accumulator_sums_batches() -> None:
    acc = ConfusionAccumulator(3)
    assert acc.matrix.tolist() == [[0] * 3] * 3
    # first row of the example, then the second row, as two batches
    acc.update(torch.tensor([TRUTH[0]]), torch.tensor([PRED[0]]))
    acc.update(np.array([TRUTH[1]]), np.array([PRED[1]]))
    assert acc.matrix.tolist() == EXPECTED_CONF
    _check(acc.scores(), EXPECTED)
    acc.reset()
    assert acc.matrix.sum() == 0
    assert acc.scores()["per_class_iu"] == [None, None, None]


def test_batched_nchw_labels() -> None:
    truth = torch.tensor([TRUTH, TRUTH])  # N x H x W
    pred = torch.tensor([PRED, PRED])
    assert confusion_matrix(truth, pred, 3).tolist() == [[2 * v for v in r] for r in EXPECTED_CONF]


def test_scores_with_names() -> None:
    scores = segmentation_scores(torch.tensor(EXPECTED_CONF))
    named = scores_with_names(scores, ["bg", "cat", "dog"])
    assert list(named) == ["pixel_acc", "mean_acc", "mean_iu", "fw_iu", "per_class_iu"]
    assert named["per_class_iu"] == pytest.approx({"bg": 1 / 3, "cat": 2 / 3, "dog": 0.5})
    with pytest.raises(ValueError):
        scores_with_names(scores, ["bg"])


def test_mask_scores_follow_edits_exactly() -> None:
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
            want = label_scores(p, truth, n)
            for key in ("pixel_acc", "mean_acc", "mean_iu", "fw_iu"):
                assert got[v][key] == pytest.approx(want[key], abs=1e-12)
    truth[0, 0] = n + 3
    with pytest.raises(ValueError, match="outside"):
        live.update(truth)


def test_confusion_of_numpy_masks_counts_every_pair() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 5, (40, 50), dtype=np.uint8)
    truth[:3] = 255
    pred = rng.integers(0, 5, (40, 50), dtype=np.uint8)
    valid = truth != 255
    want = np.zeros((5, 5), np.int64)
    np.add.at(want, (truth[valid], pred[valid]), 1)
    np.testing.assert_array_equal(confusion_matrix(truth, pred, 5).numpy(), want)
    with pytest.raises(ValueError, match="Truth labels outside"):
        confusion_matrix(np.full((2, 2), 7, np.uint8), pred[:2, :2], 5)


def test_variant_scores_sum_images_and_take_labels_or_scores() -> None:
    rng = np.random.default_rng(1)
    names = ["a", "b", "c"]
    acc = VariantScores(names, variants=("8s", "32s"))
    assert acc.variants == ["32s", "8s"]
    truths, preds = [], []
    for _ in range(3):
        truth = rng.integers(0, 3, (6, 7)).astype(np.uint8)
        scores = rng.normal(size=(3, 6, 7)).astype(np.float32)
        acc.add(truth, {"32s": torch.from_numpy(scores), "8s": scores.argmax(0)})
        truths.append(truth)
        preds.append(scores.argmax(0))
    want = label_scores(np.concatenate(preds), np.concatenate(truths), 3)
    got = acc.scores()
    for v in ("32s", "8s"):
        assert got[v]["mean_iu"] == pytest.approx(want["mean_iu"])
        assert list(got[v]["per_class_iu"]) == names
    assert acc.images == 3


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.int64, np.uint16])
@pytest.mark.parametrize("seed", range(4))
def test_narrow_key_confusion_equals_a_pixel_by_pixel_count(dtype, seed: int) -> None:
    """The CPU path for integer label maps (narrow keys, void dropped) counts exactly what
    adding pixel by pixel counts, for numpy arrays and CPU tensors alike."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 30))
    shape = (int(rng.integers(0, 40)), int(rng.integers(1, 40)))
    truth = rng.integers(0, n, shape).astype(dtype)
    pred = rng.integers(0, n, shape).astype(dtype)
    if np.iinfo(dtype).max >= 255:
        truth[rng.random(shape) < 0.2] = 255  # void, whatever the prediction there
    expected = np.zeros((n, n), np.int64)
    keep = truth != 255
    np.add.at(expected, (truth[keep].astype(np.int64), pred[keep].astype(np.int64)), 1)
    got = confusion_matrix(truth, pred, n)
    assert got.dtype == torch.int64 and got.shape == (n, n)
    assert np.array_equal(got.numpy(), expected)
    assert np.array_equal(confusion_matrix(torch.from_numpy(truth.astype(np.int64)),
                                           torch.from_numpy(pred.astype(np.int64)), n).numpy(),
                          expected)


def test_counts_and_confusion_in_chunks_equal_one_pass(monkeypatch) -> None:
    """Label counts and confusion matrices counted chunk by chunk (so a 100 MP map is never
    widened to int64 whole) equal one pass over the whole map, chunk edges included."""
    import core.metrics.confusion as confusion
    from core.metrics import count_labels

    rng = np.random.default_rng(7)
    truth = rng.integers(0, 6, (37, 41), dtype=np.uint8)
    truth[rng.random(truth.shape) < 0.3] = 255
    pred = rng.integers(0, 6, truth.shape, dtype=np.uint8)
    whole_counts = np.bincount(truth.ravel(), minlength=256)
    whole_conf = confusion_matrix(truth, pred, 6).numpy()
    monkeypatch.setattr(confusion, "COUNT_CHUNK", 100)  # 16 chunks, the last one short
    assert np.array_equal(count_labels(truth), whole_counts)
    assert np.array_equal(confusion_matrix(truth, pred, 6).numpy(), whole_conf)
    assert count_labels(np.array([300, 1], np.int64), minlength=4).tolist()[300] == 1
    truth[:3] = 255  # a chunk of void only
    assert confusion_matrix(truth, pred, 6).sum() == (truth != 255).sum()
