"""convert(): .caffemodel, pytorch-fcn .pth (weights_only, never run) and .safetensors inputs."""

from __future__ import annotations

import pathlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from core import cli
from core.checkpoints.checkpoint import ModelInfo, load_checkpoint, read_info, save_checkpoint
from core.checkpoints.convert import convert, input_format, read_torch_state
from core.checkpoints.reference import expected_keys
from core.errors import CheckpointError, ClassCountError
from core.models import CAFFE, FCN
from tests.core.checkpoints.test_caffe import random_fcn, write_caffemodel

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def source() -> FCN:
    return random_fcn(seed=7)


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    torch.manual_seed(3)
    return torch.randn(1, 3, 41, 35) * 50


def _out(model: FCN, x: torch.Tensor, variant: str) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)[variant]


def _state(model: FCN, variant: str) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if k in expected_keys(variant)}


def test_caffemodel_to_checkpoint(tmp_path: Path, source: FCN, image: torch.Tensor) -> None:
    caffemodel = write_caffemodel(tmp_path / "fcn8s-heavy-pascal.caffemodel", source, "8s")
    saved = convert(caffemodel, tmp_path / "out" / "fcn8s.safetensors")
    model, info = load_checkpoint(tmp_path / "out" / "fcn8s.safetensors")
    assert info.id == saved.id and info.preprocessing == CAFFE and len(info.class_names) == 21
    assert info.training["source"] == "caffe" and info.name == "fcn8s-heavy-pascal"
    torch.testing.assert_close(_out(model, image, "8s"), _out(source, image, "8s"),
                               atol=1e-6, rtol=0)


def test_pytorch_fcn_state_dict_round_trip(tmp_path: Path, source: FCN,
                                           image: torch.Tensor) -> None:
    path = tmp_path / "fcn16s_from_caffe.pth"  # old (pre-zip) serialization, like pytorch-fcn's
    torch.save(_state(source, "16s"), path, _use_new_zipfile_serialization=False)
    info = convert(path, tmp_path / "fcn16s.safetensors")
    model, _ = load_checkpoint(tmp_path / "fcn16s.safetensors")
    assert info.training == {"source": "pytorch-fcn", "file": path.name, "variant": "16s",
                             "at_once": False}
    torch.testing.assert_close(_out(model, image, "16s"), _out(source, image, "16s"),
                               atol=1e-6, rtol=0)


def test_training_checkpoints_and_the_at_once_name(tmp_path: Path) -> None:
    at_once = random_fcn(at_once=True, seed=4)
    path = tmp_path / "fcn8s-atonce_from_caffe.pth"
    torch.save({"model_state_dict": _state(at_once, "8s"), "epoch": 3}, path)
    info = convert(path, tmp_path / "a.safetensors")
    assert info.config.scale_skips and info.training["state_dict"] == "model_state_dict"
    state = {f"module.{k}": v for k, v in _state(at_once, "32s").items()}
    state["module.fc6.weight"] = state["module.fc6.weight"].flatten(1)  # VGG's fc layout
    torch.save({"state_dict": state}, tmp_path / "dp.pt")
    info = convert(tmp_path / "dp.pt", tmp_path / "b.safetensors")
    assert info.training["state_dict"] == "state_dict (module. prefix removed)"
    model, _ = load_checkpoint(tmp_path / "b.safetensors")
    assert not model.config.scale_skips  # a 32s file: the at-once scaling only applies to 8s
    assert torch.equal(model.fc6.weight, at_once.fc6.weight)


def test_unexpected_keys_are_reported(tmp_path: Path, source: FCN) -> None:
    state = _state(source, "32s")
    state["aux_head.weight"] = torch.zeros(2)
    torch.save(state, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match=r"unexpected layers \['aux_head.weight'\]"):
        convert(tmp_path / "x.pth", tmp_path / "x.safetensors")
    state = _state(source, "32s")
    del state["conv5_1.bias"]
    state["score_fr.weight"] = state["score_fr.weight"][:20]
    state["score_fr.bias"] = state["score_fr.bias"][:20]
    torch.save(state, tmp_path / "y.pth")
    with pytest.raises(CheckpointError, match=r"missing layers \['conv5_1.bias'\]"):
        convert(tmp_path / "y.pth", tmp_path / "y.safetensors")
    state["conv5_1.bias"] = source.conv5_1.bias.detach()
    torch.save(state, tmp_path / "z.pth")
    with pytest.raises(ClassCountError, match=r"upscore.weight has shape \(21, 21, 64, 64\)"):
        convert(tmp_path / "z.pth", tmp_path / "z.safetensors")
    assert not list(tmp_path.glob("*.safetensors"))


class _Payload:
    """Pickles as a call to Path.touch: loading it with full pickle would create a file."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (pathlib.Path.touch, (self.target,))


def test_a_pickle_carrying_code_is_refused_without_running_it(tmp_path: Path,
                                                              source: FCN) -> None:
    marker = tmp_path / "pwned"
    state = _state(source, "32s")
    state["conv1_1.weight"] = _Payload(marker)
    torch.save(state, tmp_path / "evil.pth")
    refused = r"refused: .*\(Unsupported global: GLOBAL .*\)\. FCN Studio never executes"
    with pytest.raises(CheckpointError, match=refused):
        convert(tmp_path / "evil.pth", tmp_path / "evil.safetensors")
    assert not marker.exists()


def test_bad_torch_files(tmp_path: Path) -> None:
    (tmp_path / "junk.pth").write_bytes(b"not a torch file at all")
    with pytest.raises(CheckpointError, match=r"not a PyTorch weights file: torch\.save writes a "
                                              r"zip archive .* neither"):
        read_torch_state(tmp_path / "junk.pth")
    torch.save({"conv1_1.weight": torch.zeros(8)}, tmp_path / "whole.pth")
    data = (tmp_path / "whole.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pth is not a readable PyTorch weights file"):
        read_torch_state(tmp_path / "cut.pth")
    torch.save({"conv1_1.weight": torch.zeros(1), "epoch": 3}, tmp_path / "mixed.pth")
    with pytest.raises(CheckpointError, match=r"entries \['epoch'\] are not tensors"):
        read_torch_state(tmp_path / "mixed.pth")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="holds a list, not a state dict"):
        read_torch_state(tmp_path / "list.pth")


def test_safetensors_inputs(tmp_path: Path, source: FCN) -> None:
    ckpt = tmp_path / "m.safetensors"
    first = save_checkpoint(ckpt, source, ModelInfo([f"c{i}" for i in range(21)], source.config,
                                                    name="m"))
    again = convert(ckpt, tmp_path / "copy.safetensors", name="copy")
    assert again.id == first.id and again.name == "copy"
    renamed = convert(ckpt, tmp_path / "n.safetensors", class_names=[f"k{i}" for i in range(21)])
    assert renamed.class_names[3] == "k3"
    with pytest.raises(CheckpointError, match="not an at-once model"):
        convert(ckpt, tmp_path / "o.safetensors", at_once=True)
    save_file(_state(source, "32s"), str(tmp_path / "raw.safetensors"))
    info = convert(tmp_path / "raw.safetensors", tmp_path / "raw2.safetensors")
    assert info.training["source"] == "safetensors" and info.training["variant"] == "32s"


def test_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="unsupported model format"):
        input_format("model.h5")
    with pytest.raises(CheckpointError, match="does not exist"):
        convert(tmp_path / "none.pth", tmp_path / "o.safetensors")
    with pytest.raises(CheckpointError, match=r"must be a \.safetensors file"):
        convert(tmp_path / "none.pth", tmp_path / "o.pth")


def test_cli_convert(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    five = random_fcn(5, seed=1)
    caffemodel = write_caffemodel(tmp_path / "five.caffemodel", five, "32s", v1=True)
    (tmp_path / "classes.txt").write_text("# five\nsky\nroad\n\ncar\nperson\ntree\n")
    out = tmp_path / "five.safetensors"
    assert cli.main(["convert", str(caffemodel), str(out), "--classes",
                     str(tmp_path / "classes.txt")]) == 0
    assert "FCN-32s, 5 classes, width 0.0625" in capsys.readouterr().out
    assert read_info(out).class_names == ["sky", "road", "car", "person", "tree"]
    (tmp_path / "three.txt").write_text("a\nb\nc\n")
    assert cli.main(["convert", str(caffemodel), str(out), "--classes",
                     str(tmp_path / "three.txt")]) == 2
    assert "3 class names given, but" in capsys.readouterr().err
