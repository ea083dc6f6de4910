"""Click and scribble correction on cached features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.insight.features import trunk_features
from core.refine.clicks import (
    Click,
    ClickConfig,
    ClickCorrector,
    Scribble,
    correct_clicks,
    simulate_click,
)
from tests.core.insight.conftest import randomized_fcn

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = ClickConfig(iterations=60, lr=0.05, keep_pixels=2000)


def _setup(seed: int = 0, size: tuple[int, int] = (64, 80), **model_kw: object):
    model = randomized_fcn(seed=seed, **model_kw)
    x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(seed))
    feats = trunk_features(model, x)
    with torch.no_grad():
        pred = feats.scores(model, ("8s",))["8s"][0].argmax(0).numpy().astype(np.uint8)
    return model, feats, pred


def _other_label(pred: np.ndarray, x: int, y: int) -> int:
    return (int(pred[y, x]) + 1) % 3


def test_a_positive_click_relabels_the_clicked_region_only() -> None:
    model, feats, pred = _setup()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    corrector = ClickCorrector(model, feats, pred, FAST)
    label = _other_label(pred, 40, 30)
    preview = correct_clicks(corrector, [Click(40, 30, label)])
    assert preview.labels[30, 40] == label and preview.region[30, 40]
    assert preview.iterations == 60 and np.isfinite(preview.loss)
    assert (preview.labels[preview.region] == label).all()
    assert not (preview.region & ~preview.changed).any()
    new = corrector.accept(preview)
    np.testing.assert_array_equal(new[~preview.region], pred[~preview.region])
    assert new[30, 40] == label
    for k, v in model.state_dict().items():  # the model itself never changes
        assert torch.equal(v, before[k]), k


def test_negative_clicks_and_scribbles() -> None:
    model, feats, pred = _setup(seed=1)
    corrector = ClickCorrector(model, feats, pred, FAST)
    bad = int(pred[20, 20])
    preview = correct_clicks(corrector, [Click(20, 20, bad, positive=False)])
    assert preview.labels[20, 20] != bad and preview.region[20, 20]
    corrector.reject()
    assert corrector.hints == []
    label = _other_label(pred, 50, 40)
    preview = correct_clicks(corrector, [Scribble(((45, 40), (55, 42)), label)])
    assert (preview.labels[40:43, 47:54] == label).mean() > 0.9


def test_accepted_corrections_are_kept_for_the_next_click() -> None:
    model, feats, pred = _setup(seed=2)
    corrector = ClickCorrector(model, feats, pred, FAST)
    first = _other_label(pred, 15, 15)
    current = corrector.accept(correct_clicks(corrector, [Click(15, 15, first)]))
    second = _other_label(current, 60, 50)
    preview = correct_clicks(corrector, [Click(60, 50, second)])
    assert len(corrector.hints) == 2
    assert preview.labels[15, 15] == first and preview.labels[50, 60] == second


def test_the_trunk_is_not_run_and_the_start_is_the_model() -> None:
    model, feats, pred = _setup(seed=3)

    def no_trunk(*args: object) -> None:
        raise AssertionError("the trunk ran")

    corrector = ClickCorrector(model, feats, pred, FAST)
    model.conv1_1.forward = no_trunk  # type: ignore[method-assign]
    with torch.no_grad():
        start = corrector._scores(None)  # scale 1, bias 0: exactly the model's output
        ref = feats.scores(model, ("8s",))["8s"][0]
    torch.testing.assert_close(start, ref)
    correct_clicks(corrector, [Click(10, 10, _other_label(pred, 10, 10))])


def test_trainable_final_upsamplers_use_full_resolution_steps() -> None:
    model, feats, pred = _setup(seed=4, size=(40, 44))
    model.upscore8.weight.requires_grad_(True)  # no cropped-matrix strategy then
    corrector = ClickCorrector(model, feats, pred, FAST)
    assert corrector._up is None
    label = _other_label(pred, 20, 20)
    assert correct_clicks(corrector, [Click(20, 20, label)]).labels[20, 20] == label


def test_colour_limits_what_a_click_may_spill_into() -> None:
    model, feats, pred = _setup(seed=5)
    image = np.zeros((64, 80, 3), np.uint8)
    image[:, 40:] = 255  # the click is on the black half
    corrector = ClickCorrector(model, feats, pred, FAST, image=image)
    preview = correct_clicks(corrector, [Click(20, 30, _other_label(pred, 20, 30))])
    assert not preview.region[:, 40:].any()


def test_bad_hints() -> None:
    model, feats, pred = _setup(seed=6)
    corrector = ClickCorrector(model, feats, pred, FAST)
    with pytest.raises(ValueError, match="classes"):
        corrector.add(Click(1, 1, 7))
    with pytest.raises(ValueError, match="no pixel"):
        corrector.add(Click(500, 500, 1))
    with pytest.raises(ValueError):
        ClickCorrector(model, feats, pred[:10], FAST)
    empty = corrector.preview()
    assert empty.iterations == 0 and not empty.region.any()


def test_simulated_click_is_at_the_centre_of_the_largest_error_region() -> None:
    truth = np.zeros((60, 60), np.uint8)
    truth[10:30, 10:40] = 2
    truth[40:50, 40:50] = 1
    current = np.zeros_like(truth)  # both objects missed; the class-2 one is larger
    click = simulate_click(current, truth)
    # farthest from the border of the 20 x 30 region: on its middle rows, 10 px inside
    assert click.label == 2 and click.positive
    assert 19 <= click.y <= 20 and 19 <= click.x <= 30
    assert simulate_click(truth, truth) is None
