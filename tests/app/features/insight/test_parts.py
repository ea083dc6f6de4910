"""The insight feature's Qt-free parts: the byte-bounded cache, the analysed copy's scale,
the crops spread over the windows, and the job queue's order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.features.insight.cache import ByteLRU, deep_nbytes
from app.features.insight.results import (
    INTERACTIVE,
    MAX_SIDE,
    ClassMaps,
    Scale,
    Target,
    analysis_size,
)


def test_byte_lru_drops_the_least_recently_used_beyond_its_budget() -> None:
    cache: ByteLRU[str, np.ndarray] = ByteLRU(100, lambda a: a.nbytes)
    a, b, c = (np.zeros(40, np.uint8) for _ in range(3))
    assert cache.put("a", a) and cache.put("b", b)
    assert cache.get("a") is a  # now the most recent
    assert cache.put("c", c)
    assert "b" not in cache and cache.keys() == ["a", "c"] and cache.nbytes == 80
    assert not cache.put("huge", np.zeros(101, np.uint8)) and "huge" not in cache
    assert cache.drop(lambda k: k == "a") == 1 and cache.keys() == ["c"]
    maps = ClassMaps(1, {"8s": {"score_fr": np.zeros((2, 3), np.float32)}},
                     {"8s": np.zeros((2, 3), np.float32)}, {})
    assert deep_nbytes(maps) == maps.nbytes == 48


@pytest.mark.parametrize(("h", "w"), [(96, 128), (1024, 1024), (3000, 2000), (120, 1300),
                                      (1, 5000)])
def test_the_analysed_copy_and_its_scale(h: int, w: int) -> None:
    import cv2  # noqa: F401  (the engine's resize)

    from app.features.insight.engine import downscale

    size = analysis_size(h, w)
    assert max(size) <= max(MAX_SIDE, 1) and min(size) >= 1
    assert downscale(np.zeros((h, w, 3), np.uint8)).shape[:2] == size
    scale = Scale(size, (h, w))
    assert scale.downscaled == (size != (h, w))
    assert scale.to_analysis(h - 1, w - 1) == (size[0] - 1, size[1] - 1)
    assert scale.to_analysis(0, 0) == (0, 0)
    assert scale.box_to_image(0, 0, size[1], size[0]) == pytest.approx((0, 0, w, h))
    assert ("copy" in scale.note()) == scale.downscaled


def test_crops_are_spread_over_the_windows() -> None:
    from app.features.insight.engine import spread

    assert spread(2, 3, 36) == [(i, j) for i in range(2) for j in range(3)]
    picks = spread(10, 26, 36)
    assert len(picks) <= 36 and (0, 0) in picks and (9, 25) in picks
    assert len(set(picks)) == len(picks)


def test_interactive_jobs_go_first_and_replace_their_kind(qtbot: object) -> None:
    from app.features.insight.controller import InsightController

    controller = InsightController()
    try:
        t = Target("img", "model", Path("/nonexistent.safetensors"))
        first = controller.submit("streams", t, (("cls", 1),))  # starts at once (and fails)
        assert controller.submit("streams", t, (("cls", 1),)) is first  # the same job
        heavy = controller.submit("uncertainty", t)
        old = controller.submit("pixel", t, (("y", 1), ("x", 2)))
        new = controller.submit("pixel", t, (("y", 3), ("x", 4)))
        erf = controller.submit("erf", t, (("y", 3), ("x", 4)))
        queued = [j for j in controller.pending() if j is not first]
        assert queued == [new, erf, heavy] and old not in controller.pending()
        assert {"pixel", "erf"} <= set(INTERACTIVE)
        assert controller.cancel(lambda j: j.kind == "uncertainty") == 1
        assert heavy.cancel.is_set() and heavy not in controller.pending()
    finally:
        controller.shutdown()
