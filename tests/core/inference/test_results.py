"""What a prediction stores and computes on demand: any region (and zoom) equals the full
computation; learned final upsamplers; the summaries kept while streaming; the preview."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.checkpoints.checkpoint import ModelInfo
from core.inference import Region, Segmenter
from core.models import VARIANTS, fcn_vgg16
from core.models.upsampling import RegionUpsampler

pytestmark = pytest.mark.usefixtures("one_thread")


def model_and_info(learned: bool = False, classes: int = 5) -> tuple[torch.nn.Module, ModelInfo]:
    torch.manual_seed(3)
    model = fcn_vgg16(num_classes=classes, width=0.0625, learn_final_upsampling=learned).eval()
    with torch.no_grad():
        for name in ("score_fr", "score_pool4", "score_pool3"):
            getattr(model, name).weight.normal_(std=0.5)
            getattr(model, name).bias.normal_()
        if learned:
            for name in ("upscore", "upscore16", "upscore8"):
                layer = getattr(model, name)
                layer.weight.add_(0.02 * torch.randn_like(layer.weight))
    return model, ModelInfo([f"c{i}" for i in range(classes)], model.config)


def full_scores(model, info, image: np.ndarray) -> dict[str, torch.Tensor]:
    x = info.preprocessing(torch.from_numpy(image).permute(2, 0, 1)[None])
    with torch.no_grad():
        return {v: s[0] for v, s in model(x).items()}


@pytest.fixture(scope="module")
def predicted():
    model, info = model_and_info()
    image = np.random.default_rng(0).integers(0, 256, (333, 250, 3), dtype=np.uint8)
    pred = Segmenter(model, info, device="cpu", tile_size=96).predict(image)
    return pred, full_scores(model, info, image)


def random_regions(size: tuple[int, int], n: int, seed: int) -> list[tuple[Region, int]]:
    rng = np.random.default_rng(seed)
    out = [(Region.whole(size), 1), (Region(0, 0, 1, 1), 1),
           (Region(size[0] - 1, size[1] - 3, size[0], size[1]), 1)]
    for _ in range(n):
        y0, y1 = sorted(rng.integers(0, size[0] + 1, 2))
        x0, x1 = sorted(rng.integers(0, size[1] + 1, 2))
        out.append((Region(int(y0), int(x0), int(y1) + 1, int(x1) + 1), int(rng.integers(1, 6))))
    return out


def test_regions_on_demand_equal_the_full_computation(predicted) -> None:
    pred, ref = predicted
    for v in VARIANTS:
        out, scores = pred[v], ref[v]
        probs = torch.softmax(scores, 0)
        entropy = torch.special.entr(probs).sum(0) / np.log(5)
        for region, step in random_regions(pred.image_size, 12, seed=hash(v) % 100):
            r = region.clip(pred.image_size)
            ys, xs = r.slices(step)
            np.testing.assert_allclose(out.scores(region, step), scores[:, ys, xs], atol=1e-5)
            np.testing.assert_allclose(out.probabilities(region, step), probs[:, ys, xs],
                                       atol=1e-5)
            np.testing.assert_allclose(out.probability(2, region, step), probs[2, ys, xs],
                                       atol=1e-5)
            np.testing.assert_allclose(out.entropy(region, step), entropy[ys, xs], atol=1e-5)
        np.testing.assert_allclose(out.at(17, 200), probs[:, 17, 200], atol=1e-5)
        with pytest.raises(IndexError):
            out.probability(5)


def test_labels_confidence_and_summaries_kept_while_streaming(predicted) -> None:
    pred, ref = predicted
    labels = {}
    for v in VARIANTS:
        out, probs = pred[v], torch.softmax(ref[v], 0)
        conf, lab = probs.max(0)
        labels[v] = lab.numpy()
        assert out.labels.dtype == np.uint8 and out.confidence.dtype == np.float16
        np.testing.assert_array_equal(out.labels, labels[v])
        np.testing.assert_allclose(out.confidence, conf.numpy(), rtol=1e-3)
        np.testing.assert_allclose(out.class_share(), np.bincount(labels[v].ravel(), minlength=5)
                                   / labels[v].size)
        assert out.pixels == labels[v].size
        assert out.mean_confidence == pytest.approx(float(conf.double().mean()), rel=1e-6)
        entropy = torch.special.entr(probs.double()).sum(0) / np.log(5)
        assert out.mean_entropy == pytest.approx(float(entropy.mean()), abs=1e-6)
    differ = (labels["32s"] != labels["16s"]) | (labels["32s"] != labels["8s"])
    assert pred.disagreement_fraction == pytest.approx(float(differ.mean()))
    region = Region(10, 20, 60, 90)
    np.testing.assert_array_equal(pred.disagreement(region), differ[region.slices()])


def test_only_the_fused_maps_labels_and_confidence_are_stored(predicted) -> None:
    pred, _ = predicted
    h, w = pred.image_size
    for v, stride in zip(VARIANTS, (32, 16, 8), strict=True):
        out = pred[v]
        assert out.fused.dtype == torch.float32 and out.upsampler.stride == stride
        assert out.fused.shape[0] == 5 and out.fused.shape[1] <= (h + 2 * 100) // stride + 4
        assert out.nbytes == out.fused.numel() * 4 + h * w * 3
    assert pred.nbytes == sum(pred[v].nbytes for v in VARIANTS)


def test_learned_final_upsampling_keeps_its_kernel_and_says_so() -> None:
    model, info = model_and_info(learned=True, classes=3)
    image = np.random.default_rng(1).integers(0, 256, (150, 170, 3), dtype=np.uint8)
    pred = Segmenter(model, info, device="cpu", tile_size=64).predict(image)
    ref = full_scores(model, info, image)
    assert any("learned" in m and "FCN-8s" in m for m in pred.messages)
    for v in VARIANTS:
        assert pred[v].upsampler.learned and pred[v].upsampler.kernel.shape[:2] == (3, 3)
        np.testing.assert_allclose(pred[v].scores(), ref[v], atol=1e-5)
        r = Region(31, 7, 140, 99)
        np.testing.assert_allclose(pred[v].probabilities(r, 3),
                                   torch.softmax(ref[v], 0)[:, 31:140:3, 7:99:3], atol=1e-5)
        np.testing.assert_array_equal(pred[v].labels, ref[v].argmax(0).numpy())


def test_the_identity_upsampler_keeps_a_full_resolution_map() -> None:
    scores = torch.randn(4, 9, 11)
    up = RegionUpsampler.identity()
    torch.testing.assert_close(up(scores, range(2, 9, 2), range(0, 11)), scores[:, 2:9:2])


def test_preview_segments_a_downscaled_copy() -> None:
    model, info = model_and_info(classes=3)
    image = np.random.default_rng(2).integers(0, 256, (900, 1200, 3), dtype=np.uint8)
    seg = Segmenter(model, info, device="cpu", tile_size=256)
    preview = seg.preview(image, side=300)
    assert preview.is_preview and preview.image_size == (225, 300)
    assert preview.source_size == (900, 1200)
    small = seg.preview(image[:200, :250], side=300)
    assert not small.is_preview and small.image_size == (200, 250)
