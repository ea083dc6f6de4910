"""Streaming on a CUDA GPU: fp32 equals the untiled network, the fp16 trunk agrees with it,
bands are measured among the GPU heights (skipped without a GPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.checkpoints.checkpoint import ModelInfo
from core.inference import Segmenter
from core.inference.tuning import GPU_BANDS
from core.models import VARIANTS, fcn_vgg16

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def exact_cuda():  # pragma: no cover - GPU only
    flags = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = flags


def _model(width: float = 0.0625):  # pragma: no cover - GPU only
    torch.manual_seed(0)
    model = fcn_vgg16(num_classes=4, width=width).eval()
    with torch.no_grad():
        for name in ("score_fr", "score_pool4", "score_pool3"):
            getattr(model, name).weight.normal_(std=0.5)
            getattr(model, name).bias.normal_()
    return model, ModelInfo(["a", "b", "c", "d"], model.config)


def _untiled(model, info, image: np.ndarray) -> dict[str, np.ndarray]:  # pragma: no cover
    x = info.preprocessing(torch.from_numpy(image).permute(2, 0, 1)[None]).cuda()
    with torch.no_grad():
        return {v: s[0].float().cpu().numpy() for v, s in model.cuda()(x).items()}


def test_fp32_streaming_on_cuda_equals_untiled(exact_cuda) -> None:  # pragma: no cover
    model, info = _model()
    image = np.random.default_rng(0).integers(0, 256, (301, 250, 3), dtype=np.uint8)
    pred = Segmenter(model, info, device="cuda", backend="eager", tile_size=64).predict(image)
    assert pred.device.startswith("cuda") and pred.tiled
    ref = _untiled(model, info, image)
    for v in VARIANTS:
        np.testing.assert_allclose(pred[v].scores(), ref[v], rtol=0, atol=1e-4)


def test_fp16_trunk_agrees_and_bands_are_measured(exact_cuda, tmp_path, monkeypatch
                                                  ) -> None:  # pragma: no cover
    monkeypatch.setenv("FCN_STUDIO_CACHE", str(tmp_path))
    model, info = _model(width=0.25)
    image = np.random.default_rng(1).integers(0, 256, (700, 530, 3), dtype=np.uint8)
    seg = Segmenter(model, info, device="cuda")
    assert "fp16 trunk" in seg.description
    band = seg.runner.band(700, 530, seg.device)
    assert band in GPU_BANDS or band == 700
    pred = seg.predict(image)
    ref = _untiled(model, info, image)
    for v in VARIANTS:
        assert (pred[v].labels == ref[v].argmax(0)).mean() > 0.98
        np.testing.assert_allclose(pred[v].scores(), ref[v], rtol=0, atol=0.1)
