"""The skip-stream decomposition: terms from FCN.heads(streams=...) sum to the model's output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.insight.features import trunk_features
from core.insight.streams import VARIANT_STREAMS, decompose, skip_changes
from core.models.upsampling import CroppedUpsampling
from tests.core.insight.conftest import randomized_fcn

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("scale_skips", [False, True])
def test_terms_sum_to_the_output_for_16s_and_8s(scale_skips: bool) -> None:
    model = randomized_fcn(scale_skips=scale_skips).double()
    x = torch.randn(1, 3, 45, 61, dtype=torch.float64)
    dec = decompose(model, model.features(x), (45, 61))
    with torch.no_grad():
        ref = model(x)
    for v in ("16s", "8s"):
        assert set(dec.terms[v]) == set(VARIANT_STREAMS[v])
        total = sum(dec.terms[v].values())
        assert torch.allclose(total, ref[v][0], atol=1e-5, rtol=0)
        assert dec.residual(v) < 1e-9
        for t in dec.terms[v].values():  # every stream contributes: no term is the whole
            assert t.abs().max() > 1e-3 and (t - ref[v][0]).abs().max() > 1e-3
    assert torch.equal(dec.terms["32s"]["score_fr"], ref["32s"][0])


def test_at_once_scaling_is_in_the_skip_terms() -> None:
    plain = randomized_fcn(scale_skips=False, seed=3).double()
    scaled = randomized_fcn(scale_skips=True, seed=3).double()
    scaled.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 40, 40, dtype=torch.float64)
    a = decompose(plain, plain.features(x), (40, 40), variants=("8s",))
    b = decompose(scaled, scaled.features(x), (40, 40), variants=("8s",))
    assert torch.equal(a.terms["8s"]["score_fr"], b.terms["8s"]["score_fr"])
    assert not torch.allclose(a.terms["8s"]["score_pool3"], b.terms["8s"]["score_pool3"])
    assert b.residual("8s") < 1e-9


def test_float32_with_the_cropped_upsampling_and_cached_features() -> None:
    model = randomized_fcn(seed=1)
    x = torch.randn(1, 3, 70, 50)
    feats = trunk_features(model, x)
    dec = decompose(model, feats, upsampling=CroppedUpsampling(model))
    with torch.no_grad():
        ref = model(x)
    for v in ("16s", "8s"):
        torch.testing.assert_close(sum(dec.terms[v].values()), ref[v][0], atol=1e-5, rtol=0)
        torch.testing.assert_close(dec.outputs[v], ref[v][0], atol=1e-5, rtol=1e-5)


def test_streams_argument_of_the_heads() -> None:
    model = randomized_fcn(seed=2)
    x = torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        feats = model.features(x)
        none = model.heads(feats, (40, 40), streams=())
        fr = model.heads(feats, (40, 40), streams=("score_fr",))
        full = model.heads(feats, (40, 40))
        every = model.heads(feats, (40, 40), streams=("score_fr", "score_pool4", "score_pool3"))
    for v in none:
        assert not none[v].any()
        assert torch.equal(every[v], full[v])
    assert torch.equal(fr["32s"], full["32s"])  # 32s has no skip
    with pytest.raises(ValueError, match="unknown streams"):
        model.heads(feats, (40, 40), streams=("score_pool5",))


def test_pixel_breakdown_bars_sum_to_the_logits() -> None:
    model = randomized_fcn(seed=4).double()
    x = torch.randn(1, 3, 36, 52, dtype=torch.float64)
    dec = decompose(model, model.features(x), (36, 52))
    bars = dec.at(20, 7)
    with torch.no_grad():
        ref = model(x)
    for v in ("32s", "16s", "8s"):
        np.testing.assert_allclose(bars.totals[v], ref[v][0, :, 20, 7].numpy(), atol=1e-9)
        np.testing.assert_allclose(sum(bars.terms[v].values()), bars.totals[v], atol=1e-9)
        assert bars.labels[v] == int(ref[v][0, :, 20, 7].argmax())
    with pytest.raises(IndexError):
        dec.at(36, 0)


def test_skip_changes_compare_the_variants() -> None:
    model = randomized_fcn(seed=5)
    x = torch.randn(1, 3, 48, 48)
    dec = decompose(model, model.features(x), (48, 48))
    changes = skip_changes(dec)
    assert set(changes) == {"pool4", "pool3"}
    p4 = changes["pool4"]
    with torch.no_grad():
        ref = model(x)
    np.testing.assert_allclose(p4.delta, (ref["16s"] - ref["32s"])[0].numpy(), atol=1e-5)
    np.testing.assert_array_equal(p4.changed, (ref["16s"].argmax(1) != ref["32s"].argmax(1))[0])
    assert p4.changed.any() and 0 < p4.changed_fraction < 1
    np.testing.assert_allclose(changes["pool3"].term, dec.terms["8s"]["score_pool3"].numpy())
    only8 = decompose(model, model.features(x), (48, 48), variants=("8s",))
    assert skip_changes(only8) == {}
