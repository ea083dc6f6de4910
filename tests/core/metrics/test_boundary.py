"""Boundary F-score."""

from __future__ import annotations

import numpy as np
import pytest

from core.metrics.boundary import boundary_f_score, class_boundary


def _square(shift: int = 0) -> np.ndarray:
    m = np.zeros((40, 40), np.uint8)
    m[10:30, 10 + shift:30 + shift] = 1
    return m


def test_identical_maps_score_one_and_shifts_lower_it() -> None:
    truth = _square()
    assert boundary_f_score(truth, truth, 2)["mean_bf"] == 1.0
    assert boundary_f_score(truth, _square(2), 2, tolerance=2)["mean_bf"] == 1.0  # within
    near = boundary_f_score(truth, _square(3), 2, tolerance=2)["mean_bf"]
    far = boundary_f_score(truth, _square(6), 2, tolerance=2)["mean_bf"]
    assert 0.3 < far < near < 0.9
    assert boundary_f_score(truth, _square(6), 2, tolerance=6)["mean_bf"] == 1.0


def test_absent_classes_and_void() -> None:
    truth = _square()
    truth[:, :3] = 255
    pred = _square()
    pred[:, :3] = 0
    scores = boundary_f_score(truth, pred, 3)
    assert scores["per_class_bf"][2] is None
    assert scores["mean_bf"] == 1.0
    assert boundary_f_score(truth, np.full((40, 40), 2), 3)["per_class_bf"][1] == 0.0
    with pytest.raises(ValueError):
        boundary_f_score(truth, pred[:10], 3)


def test_class_boundary() -> None:
    b = class_boundary(_square())
    assert b.sum() == 4 * 19 and not b[11:29, 11:29].any()
