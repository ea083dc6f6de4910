"""Segmenter: outputs, equality with a direct forward, batches, progress, cancel, OOM fallback
(exact streaming and regions on demand: test_streaming.py, test_results.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.checkpoints.checkpoint import ModelInfo, save_checkpoint
from core.errors import CheckpointError, ClassCountError, FCNStudioError
from core.inference import Prediction, Region, Segmenter
from core.inference.devices import available_devices, describe, pick_device
from core.inference.runner import StreamRunner
from core.models import VARIANTS, fcn_vgg16
from core.models.fcn import FCN
from core.models.preprocess import IMAGENET

pytestmark = pytest.mark.usefixtures("one_thread")

CLASSES = ["background", "thing", "stuff"]


def scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth synthetic RGB image of overlapping colored disks."""
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), dtype=np.uint8)
    img[:] = rng.integers(0, 256, 3, dtype=np.uint8)
    for _ in range(max(4, h * w // 12000)):
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.circle(img, center, int(rng.integers(max(4, min(h, w) // 20), max(5, min(h, w) // 4))),
                   color, -1)
    return cv2.GaussianBlur(img, (5, 5), 0)


def trained_like(model: FCN, image: np.ndarray, targets=(1.0, 3.0, 6.0), seed: int = 0) -> None:
    """Random score layers calibrated on ``image``: spatially varying, confident outputs.

    Each score layer gets random weights, a bias that centers its output over the image
    and a scale giving logits of standard deviation ``targets`` (score_fr, pool4, pool3).
    """
    gen = torch.Generator().manual_seed(seed)
    model.eval()
    x = IMAGENET(torch.from_numpy(image).permute(2, 0, 1)[None])
    with torch.no_grad():
        feats = model.features(x)
        for (layer, key), target in zip(
            (("score_fr", "fc7"), ("score_pool4", "pool4"), ("score_pool3", "pool3")),
            targets, strict=True,
        ):
            conv = getattr(model, layer)
            w = torch.randn(conv.weight.shape[:2], generator=gen)
            mean = feats[key].mean((0, 2, 3))
            std = torch.einsum("oc,nchw->nohw", w, feats[key] - mean[:, None, None]).std()
            conv.weight.copy_((w * target / std)[:, :, None, None])
            conv.bias.copy_(-(w @ mean) * target / std)


@pytest.fixture(scope="module")
def model_info() -> tuple[FCN, ModelInfo]:
    torch.manual_seed(0)
    model = fcn_vgg16(num_classes=3, width=0.0625)
    trained_like(model, scene(200, 240, seed=1))
    return model, ModelInfo(list(CLASSES), model.config)


@pytest.fixture
def seg(model_info: tuple[FCN, ModelInfo]) -> Segmenter:
    model, info = model_info
    return Segmenter(model, info, device="cpu")


def direct(model: FCN, info: ModelInfo, image: np.ndarray) -> dict[str, torch.Tensor]:
    """Softmax probabilities of the untiled model, ``{variant: (C, H, W)}``."""
    x = info.preprocessing(torch.from_numpy(image).permute(2, 0, 1)[None])
    with torch.no_grad():
        return {v: torch.softmax(s[0], 0) for v, s in model.eval()(x).items()}


# --------------------------------------------------------------------------- outputs


def test_outputs_have_the_documented_shapes_dtypes_and_ranges(seg: Segmenter) -> None:
    pred = seg.predict(scene(90, 120))
    assert isinstance(pred, Prediction)
    assert list(pred.outputs) == list(VARIANTS) and pred.variants == VARIANTS
    assert pred.image_size == (90, 120) and pred.device == "cpu" and not pred.is_preview
    assert not pred.tiled and pred.messages == [] and pred.seconds > 0
    assert pred.finished == [Region(0, 0, 90, 120)]
    for out in pred.outputs.values():
        p = out.probabilities()
        assert p.shape == (3, 90, 120) and p.dtype == np.float32
        assert out.labels.shape == (90, 120) and out.labels.dtype == np.uint8
        assert out.confidence.dtype == np.float16 and out.entropy().dtype == np.float32
        np.testing.assert_allclose(p.sum(0), 1.0, atol=1e-5)
        entropy = out.entropy()
        assert 0.0 <= entropy.min() and entropy.max() <= 1.0
        np.testing.assert_allclose(out.confidence, p.max(0), rtol=1e-3)
        top2 = np.sort(p, axis=0)[-2:]
        unique_top = top2[1] > top2[0] + 1e-6
        assert (out.labels == p.argmax(0))[unique_top].all()
        ref_entropy = -(p * np.log(np.clip(p, 1e-12, 1))).sum(0) / np.log(3)
        np.testing.assert_allclose(entropy, ref_entropy, atol=1e-5)
        share = out.class_share()
        assert share.shape == (3,) and share.sum() == pytest.approx(1.0)
        assert share[1] == pytest.approx((out.labels == 1).mean())
        assert out.mean_confidence == pytest.approx(float(p.max(0).mean()), rel=1e-5)
        assert out.mean_entropy == pytest.approx(float(ref_entropy.mean()), abs=1e-5)
    assert pred.disagreement_fraction == pytest.approx(float(pred.disagreement().mean()))
    # the calibrated model's outputs are not constant
    assert len(np.unique(pred["8s"].labels)) == 3


def test_prediction_equals_a_direct_forward_and_softmax(
    seg: Segmenter, model_info: tuple[FCN, ModelInfo]
) -> None:
    image = scene(96, 128, seed=3)
    pred = seg.predict(image)
    ref = direct(*model_info, image)
    for v in VARIANTS:
        probs = ref[v].numpy()
        np.testing.assert_array_equal(pred[v].labels, probs.argmax(0))
        np.testing.assert_allclose(pred[v].confidence, probs.max(0), rtol=1e-3)
        np.testing.assert_allclose(pred[v].probabilities(), probs, atol=1e-5)


def test_variant_subset_and_disagreement(seg: Segmenter) -> None:
    image = scene(64, 80, seed=4)
    only = seg.predict(image, variants="8s")
    assert list(only.outputs) == ["8s"]
    assert not only.disagreement().any()
    full = seg.predict(image, variants=["8s", "32s"])
    assert list(full.outputs) == ["32s", "8s"]  # VARIANTS order
    np.testing.assert_array_equal(full["8s"].labels, only["8s"].labels)
    differ = full.disagreement()
    assert differ.dtype == bool and differ.shape == (64, 80)
    np.testing.assert_array_equal(differ, full["32s"].labels != full["8s"].labels)
    with pytest.raises(FCNStudioError, match="Unknown variants: 4s"):
        seg.predict(image, variants=("4s",))


def test_gray_and_rgba_inputs(seg: Segmenter) -> None:
    rgb = scene(48, 64, seed=5)
    gray = rgb[:, :, 1].copy()
    from_gray = seg.predict(gray, variants="8s")
    from_rgb = seg.predict(np.repeat(gray[:, :, None], 3, axis=2), variants="8s")
    np.testing.assert_array_equal(from_gray["8s"].fused, from_rgb["8s"].fused)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])
    np.testing.assert_array_equal(
        seg.predict(rgba, variants="8s")["8s"].fused, seg.predict(rgb, variants="8s")["8s"].fused
    )


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((8, 8, 3), np.float32), "uint8"),
        (np.zeros((8, 8, 2), np.uint8), "shape"),
        (np.zeros((2, 8, 8, 3), np.uint8), "shape"),
        (np.zeros((0, 8, 3), np.uint8), "empty"),
        ([[1, 2], [3, 4]], "numpy array"),
    ],
)
def test_bad_inputs_are_clear_errors(seg: Segmenter, image: object, match: str) -> None:
    with pytest.raises(FCNStudioError, match=match):
        seg.predict(image)  # type: ignore[arg-type]


def test_bad_settings(model_info: tuple[FCN, ModelInfo]) -> None:
    model, info = model_info
    with pytest.raises(FCNStudioError, match="tile_size"):
        Segmenter(model, info, device="cpu", tile_size=16)
    other = ModelInfo(["a", "b"], fcn_vgg16(num_classes=2, width=0.0625).config)
    with pytest.raises(ClassCountError):
        Segmenter(model, other, device="cpu")


def test_predict_batch_matches_single_predictions_in_order(seg: Segmenter) -> None:
    images = [scene(40, 56, seed=s) for s in range(3)] + [scene(48, 40, seed=9)]
    images.insert(1, images.pop())  # sizes: A, B, A, A
    seen: list[float] = []
    preds = seg.predict_batch(images, variants=("16s", "8s"), progress=seen.append)
    assert [p.image_size for p in preds] == [img.shape[:2] for img in images]
    for image, pred in zip(images, preds, strict=True):
        single = seg.predict(image, variants=("16s", "8s"))
        for v in ("16s", "8s"):
            # batched convolutions may differ in the last bits from single ones
            np.testing.assert_allclose(pred[v].probabilities(), single[v].probabilities(),
                                       atol=1e-5)
    assert seen == sorted(seen) and seen[-1] == 1.0


# --------------------------------------------------------------------------- out of memory


def _oom_above(
    seg: Segmenter, limit: int, monkeypatch, *, error=None, device_type=None
) -> list[tuple]:
    """Make the bands fed to a stream raise a CUDA OOM when taller than ``limit`` rows.

    With ``device_type``, only bands on that device type run out of memory.
    """
    real = seg.runner.feed
    calls: list[tuple] = []

    def feed(stream, rows: torch.Tensor):
        calls.append((tuple(rows.shape), rows.device.type))
        if rows.shape[2] > limit and device_type in (None, rows.device.type):
            raise error or torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GB")
        return real(stream, rows)

    monkeypatch.setattr(seg.runner, "feed", feed)
    return calls


def test_oom_falls_back_to_shorter_bands(seg: Segmenter, monkeypatch, caplog) -> None:
    image = scene(256, 320, seed=10)
    calls = _oom_above(seg, 128, monkeypatch)
    with caplog.at_level(logging.WARNING, logger="core.inference"):
        pred = seg.predict(image, variants="8s")
    assert pred.tiled and pred.device == "cpu"
    assert pred.messages == ["CPU out of memory: fell back to 128-row bands"]
    assert "fell back to 128-row bands" in caplog.text
    assert calls[0][0] == (1, 3, 256, 320) and [c[0][2] for c in calls[1:]] == [128, 128]


def test_runtime_error_out_of_memory_is_handled_too(seg: Segmenter, monkeypatch) -> None:
    _oom_above(seg, 128, monkeypatch, error=RuntimeError("MPS backend out of memory"))
    assert seg.predict(scene(200, 64), variants="32s").tiled


def test_oom_on_the_gpu_falls_back_to_the_cpu(
    seg: Segmenter, model_info, monkeypatch, caplog
) -> None:
    # Simulate a GPU with the meta device: bands there run out of memory.
    image = scene(72, 96, seed=11)
    ref = direct(*model_info, image)
    moves: list[str] = []
    model = seg.model
    monkeypatch.setattr(model, "to", lambda device, **kw: moves.append(str(device)) or model)
    seg.device = torch.device("meta")
    monkeypatch.setattr(seg.runner, "source", lambda images, device: (
        lambda r0, r1: torch.empty(1, 3, r1 - r0, 96, device=device)) if device.type == "meta"
        else StreamRunner.source(seg.runner, images, device))
    monkeypatch.setattr(seg.runner, "band", lambda h, w, device: h)
    calls = _oom_above(seg, 0, monkeypatch, device_type="meta")
    with caplog.at_level(logging.WARNING, logger="core.inference"):
        pred = seg.predict(image)
    assert pred.device == "cpu" and not pred.tiled
    assert pred.messages == ["CPU out of memory: fell back to 32-row bands",
                             "CPU out of memory: fell back to the CPU"]
    assert [c[1] for c in calls] == ["meta", "meta", "cpu"]
    assert moves == ["cpu", "meta"]  # moved to the CPU and back
    assert seg.device == torch.device("meta")
    for v in VARIANTS:
        np.testing.assert_array_equal(pred[v].labels, ref[v].numpy().argmax(0))


def test_oom_everywhere_is_an_error_not_a_crash(seg: Segmenter, monkeypatch) -> None:
    _oom_above(seg, 0, monkeypatch)
    with pytest.raises(FCNStudioError, match="Out of memory on the CPU"):
        seg.predict(scene(256, 320), variants="8s")


def test_oom_with_a_batch_retries_one_image_at_a_time(seg: Segmenter, monkeypatch) -> None:
    real = seg.runner.feed

    def feed(stream, rows: torch.Tensor):
        if rows.shape[0] > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return real(stream, rows)

    monkeypatch.setattr(seg.runner, "feed", feed)
    images = [scene(40, 48, seed=s) for s in range(3)]
    preds = seg.predict_batch(images, variants="8s")
    assert len(preds) == 3
    assert all("one image at a time" in p.messages[0] for p in preds)
    np.testing.assert_array_equal(
        preds[2]["8s"].labels, seg.predict(images[2], variants="8s")["8s"].labels
    )


def test_other_errors_propagate(seg: Segmenter, monkeypatch) -> None:
    _oom_above(seg, 0, monkeypatch, error=RuntimeError("shape mismatch"))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        seg.predict(scene(32, 32))


# --------------------------------------------------------------------------- checkpoints


def test_from_checkpoint(tmp_path: Path, model_info) -> None:
    model, info = model_info
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(path, model, info)
    seg = Segmenter.from_checkpoint(path, device="cpu", tile_size=512)
    assert seg.class_names == CLASSES and seg.tile_size == 512
    image = scene(40, 40, seed=12)
    np.testing.assert_array_equal(
        seg.predict(image)["8s"].labels, direct(model, info, image)["8s"].numpy().argmax(0)
    )


def test_from_checkpoint_missing_files(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        Segmenter.from_checkpoint(tmp_path / "nope.safetensors", device="cpu")
    monkeypatch.setenv("FCN_STUDIO_MODEL", str(tmp_path / "missing.safetensors"))
    with pytest.raises(CheckpointError, match=r"No default model.*python -m core train"):
        Segmenter.from_checkpoint(device="cpu")


# --------------------------------------------------------------------------- devices


def test_pick_device() -> None:
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(" CPU ") == torch.device("cpu")
    assert pick_device(None) == pick_device("auto")
    with pytest.raises(FCNStudioError, match="Unknown device 'banana'"):
        pick_device("banana")
    if not torch.cuda.is_available():
        assert pick_device("auto") in (torch.device("cpu"), torch.device("mps"))
        with pytest.raises(FCNStudioError, match=r"not available.*available: auto,.*cpu"):
            pick_device("cuda")
        with pytest.raises(FCNStudioError, match="not available"):
            pick_device("cuda:1")
    else:  # pragma: no cover - GPU machines
        with pytest.raises(FCNStudioError, match="not available"):
            pick_device(f"cuda:{torch.cuda.device_count()}")


def test_available_devices_and_describe() -> None:
    devices = available_devices()
    ids = [d for d, _ in devices]
    assert ids[0] == "auto" and ids[-1] == "cpu"
    assert devices[0][1].startswith("Auto (")
    for dev_id, _ in devices:
        pick_device(dev_id)
    assert describe("cpu") == f"CPU ({torch.get_num_threads()} threads)"


def test_a_gpu_that_torch_cannot_use_is_explained(monkeypatch, caplog) -> None:
    import logging

    import core.inference.devices as devices

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(devices, "_cuda_count", lambda: 0)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)
    monkeypatch.setattr(devices, "_nvidia_gpu_present", lambda: False)
    assert devices.gpu_hint() is None  # no GPU here: nothing to say
    monkeypatch.setattr(devices, "_nvidia_gpu_present", lambda: True)
    monkeypatch.setattr(torch.version, "cuda", None)
    assert "CPU-only build" in devices.gpu_hint()
    monkeypatch.setattr(torch.version, "cuda", "13.2")
    hint = devices.gpu_hint()
    assert "CUDA 13.2" in hint and "driver" in hint
    monkeypatch.setattr(devices, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="core.inference.devices"):
        assert devices.pick_device("auto") == torch.device("cpu")
        devices.pick_device("auto")
    assert caplog.text.count("cannot use it") == 1  # said once
    with pytest.raises(FCNStudioError, match="driver may be too old"):
        devices.pick_device("cuda")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert devices.gpu_hint() is None  # the GPUs are hidden on purpose
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr(devices, "_cuda_count", lambda: 1)
    assert devices.gpu_hint() is None  # CUDA works
