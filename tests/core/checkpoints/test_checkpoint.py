"""Checkpoints: round trip, metadata, atomic writes, and clear errors for bad files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from core.checkpoints.checkpoint import (
    METADATA_KEY,
    ModelInfo,
    load_checkpoint,
    load_state,
    read_info,
    save_checkpoint,
)
from core.errors import CheckpointError, ClassCountError, WriteError
from core.models import CAFFE, fcn_vgg16
from core.models.upsampling import bilinear_kernel


def _model(n: int = 3):
    torch.manual_seed(0)
    return fcn_vgg16(num_classes=n, width=0.0625)


def test_round_trip_keeps_weights_and_metadata(tmp_path: Path) -> None:
    model = _model()
    info = ModelInfo(["bg", "cat", "dog"], model.config, preprocessing=CAFFE, name="pets",
                     training={"lr": 1e-3}, metrics=[{"iteration": 5, "8s": {"mean_iu": 0.5}}],
                     parent="abc")
    saved = save_checkpoint(tmp_path / "m.safetensors", model, info)
    loaded, got = load_checkpoint(tmp_path / "m.safetensors")
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    assert got.class_names == ["bg", "cat", "dog"] and got.preprocessing == CAFFE
    assert got.metrics == info.metrics and got.parent == "abc" and got.name == "pets"
    assert got.id == saved.id and len(got.id) == 16
    assert got.colors[1] == (128, 0, 0)  # the VOC palette by default


def test_id_changes_with_the_weights(tmp_path: Path) -> None:
    model = _model()
    info = ModelInfo(["a", "b", "c"], model.config)
    a = save_checkpoint(tmp_path / "a.safetensors", model, info).id
    with torch.no_grad():
        model.score_fr.bias.add_(1)
    assert save_checkpoint(tmp_path / "b.safetensors", model, info).id != a


def test_class_names_must_match_the_model() -> None:
    with pytest.raises(ClassCountError, match="2 class names for a model of 3 classes"):
        ModelInfo(["a", "b"], _model().config)


def test_wrong_class_count_weights_are_a_clear_error(tmp_path: Path) -> None:
    five = _model(5)
    with pytest.raises(ClassCountError, match="5 classes, the model expects 3"):
        load_state(_model(3), five.state_dict(), source="five.safetensors")


def test_missing_and_unexpected_layers_are_named() -> None:
    state = _model().state_dict()
    del state["fc7.weight"]
    state["fc8.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"missing layers \['fc7.weight'\].*fc8.weight"):
        load_state(_model(), state)


def test_reference_nets_without_the_other_final_upsamplers_load() -> None:
    # An FCN-8s file has no upscore / upscore16: they keep their fixed bilinear weights.
    source = _model()
    with torch.no_grad():  # every layer in the file differs from a fresh model's
        for p in source.parameters():
            p.add_(0.5)
    state = source.state_dict()
    del state["upscore.weight"], state["upscore16.weight"]
    target = _model()
    load_state(target, state)
    for name in ("upscore", "upscore16"):
        layer = getattr(target, name)
        assert torch.equal(layer.weight, bilinear_kernel(layer.in_channels, layer.kernel_size[0]))
    for key, value in state.items():
        assert torch.equal(target.state_dict()[key], value), key


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"\x00" * 64])
def test_corrupt_files_are_rejected(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"bad\.safetensors"):
        load_checkpoint(path)


def test_truncated_checkpoint_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, _model(), ModelInfo(["a", "b", "c"], _model().config))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_a_pickle_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.safetensors"
    torch.save({"x": Evil()}, path)
    with pytest.raises(CheckpointError, match="convert"):
        load_checkpoint(path)
    assert not marker.exists()


def test_safetensors_without_our_metadata(tmp_path: Path) -> None:
    path = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(1)}, str(path))
    with pytest.raises(CheckpointError, match="without FCN Studio metadata"):
        read_info(path)


def test_malformed_metadata(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata={METADATA_KEY: json.dumps({"a": 1})})
    with pytest.raises(CheckpointError, match="malformed"):
        read_info(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_a_failed_save_leaves_the_previous_checkpoint(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "m.safetensors"
    model = _model()
    save_checkpoint(path, model, ModelInfo(["a", "b", "c"], model.config))
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("core.checkpoints.checkpoint.save_file", boom)
    with pytest.raises(WriteError, match=r"m\.safetensors: disk full"):
        save_checkpoint(path, model, ModelInfo(["a", "b", "c"], model.config, name="new"))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
