"""ONNX export: outputs match PyTorch on two input sizes (dynamic axes), metadata, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.usefixtures("one_thread")

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from core import cli  # noqa: E402
from core.checkpoints.checkpoint import ModelInfo, save_checkpoint  # noqa: E402
from core.checkpoints.onnx import export_onnx  # noqa: E402
from core.errors import FCNStudioError  # noqa: E402
from core.models import CAFFE, FCN, FCNConfig, Preprocessing  # noqa: E402


def _model(at_once: bool = False) -> FCN:
    torch.manual_seed(0)
    model = FCN(FCNConfig(num_classes=3, width=0.0625, scale_skips=at_once))
    with torch.no_grad():  # scores of a few units: float32 rounding stays well below 1e-4
        model.score_fr.weight.normal_(0, 0.01)
        for layer in (model.score_pool4, model.score_pool3):
            layer.weight.normal_(0, 0.01 if not at_once else 1.0)
        for layer in (model.score_fr, model.score_pool4, model.score_pool3):
            layer.bias.normal_(0, 0.1)
    return model.eval()


def _run(path: Path, x: np.ndarray) -> tuple[list[np.ndarray], list[str]]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return session.run(None, {"input": x}), names


def test_cli_export_matches_pytorch_on_two_sizes(tmp_path: Path) -> None:
    model = _model()
    info = ModelInfo(["bg", "cat", "dog"], model.config, preprocessing=CAFFE, name="pets")
    ckpt = tmp_path / "pets.safetensors"
    saved = save_checkpoint(ckpt, model, info)
    out = tmp_path / "pets.onnx"
    assert cli.main(["export-onnx", "--model", str(ckpt), str(out)]) == 0
    assert not list(tmp_path.glob(".pets.onnx.tmp-*"))
    torch.manual_seed(2)
    for shape in [(1, 3, 45, 38), (2, 3, 29, 61)]:
        x = torch.randn(*shape)
        got, names = _run(out, x.numpy())
        assert names == ["score_32s", "score_16s", "score_8s"]
        with torch.no_grad():
            want = model(x)
        for g, v in zip(got, ("32s", "16s", "8s"), strict=True):
            assert g.shape == (shape[0], 3, *shape[2:])
            np.testing.assert_allclose(g, want[v].numpy(), atol=1e-4, rtol=0)
    meta = {p.key: p.value for p in onnx.load(str(out), load_external_data=False).metadata_props}
    assert json.loads(meta["class_names"]) == ["bg", "cat", "dog"]
    assert Preprocessing.from_dict(json.loads(meta["preprocessing"])) == CAFFE
    assert "already preprocessed" in meta["input_format"]
    assert json.loads(meta["fcn_studio"])["id"] == saved.id


def test_uint8_input_preprocesses_inside_the_graph(tmp_path: Path) -> None:
    model = _model(at_once=True)
    info = ModelInfo(["a", "b", "c"], model.config, preprocessing=CAFFE)
    out = export_onnx(model, tmp_path / "m.onnx", info=info, variants=["8s"], uint8_input=True)
    image = torch.randint(0, 256, (1, 3, 37, 50), dtype=torch.uint8)
    got, names = _run(out, image.numpy())
    assert names == ["score_8s"]
    with torch.no_grad():
        want = model(CAFFE(image), variants=["8s"])["8s"]
    np.testing.assert_allclose(got[0], want.numpy(), atol=1e-4, rtol=0)
    assert model.training is False


def test_bad_arguments_are_clear_errors(tmp_path: Path) -> None:
    model = _model()
    info = ModelInfo(["a", "b", "c"], model.config)
    with pytest.raises(FCNStudioError, match="variants must be among"):
        export_onnx(model, tmp_path / "m.onnx", info=info, variants=["4s"])
    with pytest.raises(FCNStudioError, match="needs its ModelInfo"):
        export_onnx(model, tmp_path / "m.onnx")
    with pytest.raises(FCNStudioError, match="opset 9 is too old"):
        export_onnx(model, tmp_path / "m.onnx", info=info, opset=9)
    assert not (tmp_path / "m.onnx").exists()
