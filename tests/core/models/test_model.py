"""The FCN geometry, heads and names against the reference nets, and an independent reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from core.models import FCN, VARIANTS, FCNConfig, bilinear_kernel, fcn_vgg16
from core.models.fcn import VGG16_STAGES
from core.models.upsampling import FINAL_UPSAMPLERS, SKIP_UPSAMPLERS

REFERENCE_OFFSETS = {"32s": 19, "score_pool4": 5, "16s": 27, "score_pool3": 9, "8s": 31}
REFERENCE_NAMES = [
    *(f"conv{s}_{i}" for s, (_, n) in enumerate(VGG16_STAGES, 1) for i in range(1, n + 1)),
    "fc6",
    "fc7",
    "score_fr",
    "score_pool4",
    "score_pool3",
]


@pytest.mark.parametrize("width", [1.0, 0.25, 0.0625])
def test_crop_offsets_derived_from_geometry_equal_reference(width: float) -> None:
    model = FCN(FCNConfig(num_classes=3, width=width))
    assert model.offsets == REFERENCE_OFFSETS


def test_offsets_follow_the_geometry_when_padding_changes() -> None:
    # Padding 101 shifts every map by one image pixel: the final crops move by one too.
    model = FCN(FCNConfig(num_classes=2, width=0.0625, conv1_padding=101))
    assert model.offsets["32s"] == 20 and model.offsets["8s"] == 32
    assert model.offsets["score_pool4"] == 5  # skips shift together with the coarse map


@pytest.mark.parametrize("size", [(1, 1), (17, 300), (64, 65), (255, 129)])
def test_every_output_has_the_input_size(size: tuple[int, int]) -> None:
    model = fcn_vgg16(num_classes=4, width=0.0625).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    assert list(out) == list(VARIANTS)
    for v in VARIANTS:
        assert out[v].shape == (2, 4, *size)


def test_variant_subset_computes_only_what_is_asked() -> None:
    model = fcn_vgg16(num_classes=3, width=0.0625).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 40, 40), variants=("8s",))
    assert list(out) == ["8s"]
    with pytest.raises(ValueError, match="unknown variants"):
        model(torch.randn(1, 3, 40, 40), variants=("4s",))


def test_state_dict_uses_reference_layer_names() -> None:
    keys = set(fcn_vgg16(num_classes=21, width=0.0625).state_dict())
    for name in REFERENCE_NAMES:
        assert f"{name}.weight" in keys and f"{name}.bias" in keys
    for name in ("upscore", "upscore2", "upscore16", "upscore_pool4", "upscore8"):
        assert f"{name}.weight" in keys and f"{name}.bias" not in keys  # no bias


def test_full_width_shapes_match_the_reference_nets() -> None:
    sd = fcn_vgg16(num_classes=21).state_dict()
    assert sd["conv1_1.weight"].shape == (64, 3, 3, 3)
    assert sd["fc6.weight"].shape == (4096, 512, 7, 7)
    assert sd["fc7.weight"].shape == (4096, 4096, 1, 1)
    assert sd["score_pool4.weight"].shape == (21, 512, 1, 1)
    assert sd["score_pool3.weight"].shape == (21, 256, 1, 1)
    assert sd["upscore.weight"].shape == (21, 21, 64, 64)
    assert sd["upscore8.weight"].shape == (21, 21, 16, 16)
    n_params = sum(v.numel() for k, v in sd.items() if not k.startswith("upscore"))
    assert 134_000_000 < n_params < 135_000_000  # "FCN-VGG16 has 134M parameters"


def test_bilinear_kernel_matches_the_formula() -> None:
    w = bilinear_kernel(3, 4)
    row = torch.tensor([0.25, 0.75, 0.75, 0.25])
    assert torch.allclose(w[1, 1], row[:, None] * row[None, :])
    assert w[0, 1].abs().sum() == 0  # off-diagonal channels are zero
    odd = bilinear_kernel(1, 3)[0, 0]
    assert torch.allclose(odd[1], torch.tensor([0.5, 1.0, 0.5]))


def test_bilinear_deconvolution_interpolates_linearly() -> None:
    layer = torch.nn.ConvTranspose2d(1, 1, 4, stride=2, bias=False)
    layer.weight.data.copy_(bilinear_kernel(1, 4))
    ramp = torch.arange(6.0).view(1, 1, 1, 6).expand(1, 1, 6, 6)
    up = layer(ramp)[0, 0, 4:-4, 4:-4]  # interior, away from the zero border
    diffs = up[0, 1:] - up[0, :-1]
    assert torch.allclose(diffs, torch.full_like(diffs, 0.5))


def test_upsampling_freeze_options() -> None:
    model = fcn_vgg16(num_classes=3, width=0.0625)
    assert all(not getattr(model, n).weight.requires_grad for n in FINAL_UPSAMPLERS.values())
    assert all(getattr(model, n).weight.requires_grad for n in SKIP_UPSAMPLERS)
    model.set_upsampling_trainable(final=True, skip=False)
    assert all(getattr(model, n).weight.requires_grad for n in FINAL_UPSAMPLERS.values())
    assert all(not getattr(model, n).weight.requires_grad for n in SKIP_UPSAMPLERS)


def test_zero_initialized_skips_make_16s_and_8s_start_from_the_coarse_scores() -> None:
    # With score_pool4/score_pool3 at zero (the paper's staged init), finer outputs are smooth
    # upsamplings of score_fr: their argmax agrees with 32s almost everywhere.
    torch.manual_seed(0)
    model = fcn_vgg16(num_classes=3, width=0.0625, dropout=0.0).eval()
    torch.nn.init.normal_(model.score_fr.weight, std=1.0)
    with torch.no_grad():
        out = model(torch.randn(1, 3, 96, 96))
    agree = (out["8s"].argmax(1) == out["32s"].argmax(1)).float().mean()
    assert agree > 0.9


def _reference_fcn(
    p: dict[str, torch.Tensor], x: torch.Tensor, at_once: bool = False
) -> dict[str, torch.Tensor]:
    """An independent functional FCN with the reference nets' hard-coded crop offsets."""

    def conv(h: torch.Tensor, name: str, pad: int = 1) -> torch.Tensor:
        return F.relu(F.conv2d(h, p[f"{name}.weight"], p[f"{name}.bias"], padding=pad))

    def pool(h: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(h, 2, 2, ceil_mode=True)

    def up(h: torch.Tensor, name: str, stride: int) -> torch.Tensor:
        return F.conv_transpose2d(h, p[f"{name}.weight"], stride=stride)

    def score(h: torch.Tensor, name: str) -> torch.Tensor:
        return F.conv2d(h, p[f"{name}.weight"], p[f"{name}.bias"])

    H, W = x.shape[-2:]
    h = pool(conv(conv(x, "conv1_1", pad=100), "conv1_2"))
    h = pool(conv(conv(h, "conv2_1"), "conv2_2"))
    pool3 = h = pool(conv(conv(conv(h, "conv3_1"), "conv3_2"), "conv3_3"))
    pool4 = h = pool(conv(conv(conv(h, "conv4_1"), "conv4_2"), "conv4_3"))
    h = pool(conv(conv(conv(h, "conv5_1"), "conv5_2"), "conv5_3"))
    h = conv(conv(h, "fc6", pad=0), "fc7", pad=0)
    fr = score(h, "score_fr")
    if at_once:
        pool4, pool3 = pool4 * 0.01, pool3 * 0.0001
    out = {"32s": up(fr, "upscore", 32)[..., 19 : 19 + H, 19 : 19 + W]}
    u2 = up(fr, "upscore2", 2)
    f4 = u2 + score(pool4, "score_pool4")[..., 5 : 5 + u2.shape[2], 5 : 5 + u2.shape[3]]
    out["16s"] = up(f4, "upscore16", 16)[..., 27 : 27 + H, 27 : 27 + W]
    u4 = up(f4, "upscore_pool4", 2)
    f3 = u4 + score(pool3, "score_pool3")[..., 9 : 9 + u4.shape[2], 9 : 9 + u4.shape[3]]
    out["8s"] = up(f3, "upscore8", 8)[..., 31 : 31 + H, 31 : 31 + W]
    return out


def _randomize(model: FCN, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in model.state_dict().values():
            fan_in = t[0].numel() if t.ndim > 1 else 1
            t.copy_(torch.randn(t.shape, generator=g) * (2.0 / fan_in) ** 0.5)


@pytest.mark.parametrize("at_once", [False, True])
@pytest.mark.parametrize("size", [(37, 53), (96, 96)])
def test_matches_an_independent_reference_on_identical_weights(
    at_once: bool, size: tuple[int, int]
) -> None:
    model = FCN(FCNConfig(num_classes=5, width=0.125, scale_skips=at_once)).eval()
    _randomize(model, seed=1)
    x = torch.randn(1, 3, *size) * 50
    with torch.no_grad():
        ours = model(x)
        ref = _reference_fcn(model.state_dict(), x, at_once=at_once)
    for v in VARIANTS:
        scale = ref[v].abs().max().clamp(min=1.0)
        assert (ours[v] - ref[v]).abs().max() / scale < 1e-4, v


def test_full_width_matches_the_reference() -> None:
    torch.manual_seed(3)
    model = fcn_vgg16(num_classes=21).eval()
    _randomize(model, seed=2)
    x = torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        ours = model(x)
        ref = _reference_fcn(model.state_dict(), x)
    for v in VARIANTS:
        assert torch.allclose(ours[v], ref[v], rtol=1e-4, atol=1e-4 * ref[v].abs().max())
