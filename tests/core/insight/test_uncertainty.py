"""Uncertainty from cached features: MC dropout through fc6/fc7 only, flip TTA, variants."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.insight.features import trunk_features
from core.insight.regions import image_score, rank_images, rank_regions
from core.insight.uncertainty import SOURCES, UncertaintyConfig, estimate_uncertainty
from tests.core.insight.conftest import randomized_fcn

pytestmark = pytest.mark.usefixtures("one_thread")


def _x(seed: int = 0, size: tuple[int, int] = (48, 56)) -> torch.Tensor:
    return torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(seed))


def test_cached_features_reproduce_the_model() -> None:
    model = randomized_fcn(seed=1)
    x = _x()
    feats = trunk_features(model, x)
    with torch.no_grad():
        ref = model(x)
        got = feats.scores(model)
        torch.testing.assert_close(feats.fc7(model), model.features(x)["fc7"])
    for v in ref:
        torch.testing.assert_close(got[v], ref[v])
    model.train()  # the deterministic tail never drops, whatever the model's mode
    with torch.no_grad():
        torch.testing.assert_close(feats.fc7(model), model.eval().features(x)["fc7"])


def test_monte_carlo_dropout_runs_only_after_the_cache() -> None:
    model = randomized_fcn(seed=2)
    x = _x(1)
    feats, flipped = trunk_features(model, x), trunk_features(model, x.flip(-1))

    def no_trunk(*args: object) -> None:
        raise AssertionError("the trunk ran again")

    model.conv1_1.forward = no_trunk  # type: ignore[method-assign]
    u = estimate_uncertainty(model, features=feats, flipped=flipped,
                             config=UncertaintyConfig(mc_samples=4))
    assert set(u.maps) == set(SOURCES)
    for m in u.maps.values():
        assert m.shape == (48, 56) and m.dtype == np.float32 and 0 <= m.min() <= m.max() <= 1
    assert u.maps["mc_mutual_information"].max() > 0
    assert not model.training


def test_dropout_masks_units_of_fc6_and_fc7_at_the_trained_rate() -> None:
    model = randomized_fcn(seed=3, dropout=0.5)
    feats = trunk_features(model, _x(2, (200, 200)))
    seen: dict[str, torch.Tensor] = {}
    model.fc7.register_forward_hook(lambda m, i, o: seen.__setitem__("fc7_in", i[0]))
    model.score_fr.register_forward_hook(lambda m, i, o: seen.__setitem__("fr_in", i[0]))
    with torch.no_grad():
        model.score_fr(feats.fc7(model, dropout=torch.Generator().manual_seed(0)))
    active6 = feats.fc6 > 0
    dropped6 = float(((seen["fc7_in"] == 0) & active6).sum() / active6.sum())
    assert 0.4 < dropped6 < 0.6  # drop6 at p = 0.5, on the cached fc6 activation
    kept = seen["fc7_in"][active6 & (seen["fc7_in"] != 0)]
    torch.testing.assert_close(kept, 2 * feats.fc6[active6 & (seen["fc7_in"] != 0)])
    with torch.no_grad():  # drop7 too: fc7's positive units are dropped about half the time
        clean = torch.relu(model.fc7(seen["fc7_in"]))
    positive = clean > 0
    assert 0.4 < float(((seen["fr_in"] == 0) & positive).sum() / positive.sum()) < 0.6


def test_no_dropout_means_no_model_uncertainty() -> None:
    model = randomized_fcn(seed=4, dropout=0.0)
    u = estimate_uncertainty(model, _x(3), sources=("entropy", "mc_entropy",
                                                     "mc_mutual_information"))
    assert u.maps["mc_mutual_information"].max() < 1e-5
    np.testing.assert_allclose(u.maps["mc_entropy"], u.maps["entropy"], atol=1e-5)


def test_samples_are_seeded() -> None:
    model = randomized_fcn(seed=5)
    x = _x(4)
    a = estimate_uncertainty(model, x, sources=("mc_mutual_information",))
    b = estimate_uncertainty(model, x, sources=("mc_mutual_information",))
    c = estimate_uncertainty(model, x, sources=("mc_mutual_information",),
                             config=UncertaintyConfig(seed=1))
    np.testing.assert_array_equal(a.maps["mc_mutual_information"],
                                  b.maps["mc_mutual_information"])
    assert not np.array_equal(a.maps["mc_mutual_information"],
                              c.maps["mc_mutual_information"])


def test_flip_and_variant_maps_match_direct_computations() -> None:
    model = randomized_fcn(seed=6)
    x = _x(5)
    u = estimate_uncertainty(model, x, sources=("flip", "variants", "entropy"))
    with torch.no_grad():
        out = {v: o[0].softmax(0) for v, o in model(x).items()}
        mirrored = model(x.flip(-1))["8s"][0].flip(-1).softmax(0)
    tv = 0.5 * (out["8s"] - mirrored).abs().sum(0)
    np.testing.assert_allclose(u.maps["flip"], tv.numpy(), atol=1e-5)

    def h(p: torch.Tensor) -> torch.Tensor:
        return -(p * p.clamp_min(1e-12).log()).sum(0)

    stack = torch.stack(list(out.values()))
    js = (h(stack.mean(0)) - torch.stack([h(p) for p in stack]).mean(0)) / math.log(3)
    np.testing.assert_allclose(u.maps["variants"], js.clamp(0, 1).numpy(), atol=1e-5)
    np.testing.assert_allclose(u.maps["entropy"], (h(out["8s"]) / math.log(3)).numpy(),
                               atol=1e-5)
    np.testing.assert_array_equal(u.labels, out["8s"].argmax(0).numpy())
    assert u.combined().shape == (48, 56)
    with pytest.raises(ValueError, match="unknown"):
        estimate_uncertainty(model, x, sources=("dice",))


def test_regions_are_ranked_by_mass_and_ignore_thin_bands() -> None:
    u = np.zeros((120, 160), np.float32)
    u[10:40, 10:40] = 0.9  # the biggest blob
    u[70:90, 100:120] = 0.8
    u[112, :] = 1.0  # a one-pixel band along a boundary: less mass than either blob
    labels = np.zeros((120, 160), np.int64)
    labels[70:90, 100:120] = 3
    regions = rank_regions(u, labels, top_fraction=0.2)
    assert len(regions) >= 2
    first, second = regions[:2]
    assert first.region.bbox.x0 <= 25 < first.region.bbox.x1 and first.label == 0
    assert second.label == 3 and 100 <= second.center[0] < 120 and 70 <= second.center[1] < 90
    assert first.mass > second.mass
    assert all(r.region.bbox.y1 < 100 for r in regions[:2])
    assert any(r.region.bbox.y0 > 100 for r in regions[2:])
    assert rank_regions(np.zeros((20, 20))) == []


def test_image_ranking() -> None:
    a, b = np.full((4, 4), 0.1), np.full((4, 4), 0.3)
    scores = {"a.jpg": image_score(a), "b.jpg": image_score(b), "c.jpg": image_score(a)}
    assert rank_images(scores) == ["b.jpg", "a.jpg", "c.jpg"]
