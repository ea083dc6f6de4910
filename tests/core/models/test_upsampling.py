"""The upsampling strategies of the FCN heads give the model's own outputs."""

from __future__ import annotations

import torch

from core.models import VARIANTS, fcn_vgg16
from core.models.upsampling import (
    CroppedUpsampling,
    DeferredUpsampling,
    GroupedUpsampling,
    RegionUpsampler,
    bilinear_1d,
    bilinear_kernel,
    upsampling_matrix,
    upsampling_taps,
)


def test_grouped_upsampling_equals_the_model_heads() -> None:
    torch.manual_seed(0)
    model = fcn_vgg16(num_classes=5, width=0.03125).eval().double()
    with torch.no_grad():
        for name in ("score_fr", "score_pool4", "score_pool3"):
            getattr(model, name).weight.normal_()
        model.upscore2.weight.add_(0.01 * torch.randn_like(model.upscore2.weight))  # mixes
    grouped = GroupedUpsampling(model)
    assert grouped.grouped == ["upscore", "upscore16", "upscore8", "upscore_pool4"]
    x = torch.randn(2, 3, 70, 90, dtype=torch.float64)
    with torch.no_grad():
        feats = model.features(x)
        ref = model.heads(feats, (70, 90))
        got = model.heads(feats, (70, 90), upsampling=grouped)
    for v in VARIANTS:
        torch.testing.assert_close(got[v], ref[v], rtol=1e-12, atol=1e-12)


def test_cropped_upsampling_equals_the_model_heads() -> None:
    for scale_skips in (False, True):
        torch.manual_seed(1)
        model = fcn_vgg16(num_classes=5, width=0.0625, scale_skips=scale_skips).eval()
        for layer in (model.score_fr, model.score_pool4, model.score_pool3):
            torch.nn.init.normal_(layer.weight)
        cropped = CroppedUpsampling(model)
        for size in ((64, 64), (37, 81)):
            with torch.no_grad():
                feats = model.features(torch.randn(1, 3, *size))
                ref = model.heads(feats, size)
                got = model.heads(feats, size, VARIANTS, cropped)
                rows, cols = torch.tensor([0, 5, size[0] - 1]), torch.tensor([2, size[1] - 3])
                picked = model.heads(feats, size, VARIANTS, cropped.picking((rows, cols)))
            for v in VARIANTS:
                torch.testing.assert_close(got[v], ref[v], rtol=1e-5, atol=1e-5)
                torch.testing.assert_close(picked[v], ref[v][:, :, rows][:, :, :, cols],
                                           rtol=1e-5, atol=1e-5)
    learned = fcn_vgg16(num_classes=3, width=0.0625, learn_final_upsampling=True)
    assert CroppedUpsampling.try_make(learned) is None


def test_the_bilinear_kernel_is_the_outer_product_of_its_filter() -> None:
    for k in (3, 4, 16, 64):
        f = bilinear_1d(k)
        w = bilinear_kernel(2, k)
        torch.testing.assert_close(w[0, 0], torch.outer(f, f))
        assert float(w[0, 1].abs().sum()) == 0.0


def test_deferred_maps_and_region_upsamplers_give_the_heads_outputs_anywhere() -> None:
    torch.manual_seed(2)
    model = fcn_vgg16(num_classes=4, width=0.0625).eval().double()
    with torch.no_grad():
        for name in ("score_fr", "score_pool4", "score_pool3"):
            getattr(model, name).weight.normal_()
    size = (83, 121)
    with torch.no_grad():
        feats = model.features(torch.randn(1, 3, *size, dtype=torch.float64))
        ref = model.heads(feats, size)
        fused = model.heads(feats, size, VARIANTS, DeferredUpsampling(model))
    regions = [(range(0, 83), range(0, 121)), (range(5, 80), range(7, 121)),
               (range(3, 83, 7), range(0, 121, 5)), (range(82, 83), range(0, 1)),
               (range(0, 0), range(0, 5))]
    for v in VARIANTS:
        up = RegionUpsampler.from_model(model, v)
        assert not up.learned and up.stride == {"32s": 32, "16s": 16, "8s": 8}[v]
        for rows, cols in regions:
            got = up(fused[v][0], rows, cols)
            torch.testing.assert_close(got, ref[v][0][:, rows][:, :, cols], rtol=0, atol=1e-12)


def test_taps_are_the_rows_of_the_deconvolution_matrix() -> None:
    f = bilinear_1d(16)
    x = torch.randn(1, 1, 9, dtype=torch.float64)
    w = f.double()[None, None]
    full = torch.nn.functional.conv_transpose1d(x, w, stride=8)[0, 0]  # 8 * 8 + 16 = 80
    positions = torch.tensor([0, 3, 8, 40, 79])
    m = upsampling_matrix(f.double(), 8, 9, positions)
    torch.testing.assert_close(m @ x[0, 0], full[positions])
    index, weight = upsampling_taps(f, 8, 9, positions)
    assert index.shape == weight.shape == (5, 2) and float(weight[0, 0]) == 0.0
