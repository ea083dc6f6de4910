"""Bad inputs are clear errors naming the file (one test per class of defect)."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.atomic import atomic_write_text, clean_stale_temps
from core.checkpoints.checkpoint import ModelInfo, load_checkpoint, read_info, save_checkpoint
from core.data.imageio import image_size, read_image
from core.data.labelme import LabelMap, LabelmeError, read_labelme
from core.data.labelme_voc import labelme2voc
from core.data.palette import read_class_names
from core.errors import (
    CheckpointError,
    ClassCountError,
    ConfigError,
    DatasetError,
    ImageReadError,
    WriteError,
)
from core.models import fcn_vgg16
from core.training.config import TrainConfig, preset
from core.training.state import load_train_state


def test_a_tiny_webp_declaring_a_huge_size_is_refused_from_its_header(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (16383, 16383)).resize((16, 16)).save(buf, format="WEBP")
    data = bytearray(buf.getvalue())
    # a lossy VP8 frame stores width/height - in 14 bits at bytes 26..29
    data[26:30] = (16383).to_bytes(2, "little") + (16383).to_bytes(2, "little")
    path = tmp_path / "bomb.webp"
    path.write_bytes(bytes(data))
    for reader in (image_size, read_image):
        with pytest.raises(ImageReadError, match=r"bomb\.webp.*limit"):
            reader(path)


def test_deep_json_and_labelme_types_are_clear_errors(tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text("[" * 20000 + "]" * 20000)
    with pytest.raises(LabelmeError, match=r"x\.json.*nests"):
        read_labelme(f)
    f.write_text(json.dumps({"shapes": 5}))
    with pytest.raises(LabelmeError, match=r"x\.json"):
        labelme2voc(tmp_path, tmp_path / "out", LabelMap(("_background_", "a")))


def test_non_utf8_class_names_name_the_file(tmp_path: Path) -> None:
    f = tmp_path / "class_names.txt"
    f.write_bytes(b"background\n\xff\xfecat\n")
    with pytest.raises(DatasetError, match=r"class_names\.txt.*UTF-8"):
        read_class_names(f)


def test_path_errors_are_clear(tmp_path: Path) -> None:
    long = tmp_path / ("x" * 300 + ".png")
    with pytest.raises(ImageReadError, match="too long"):
        read_image(long)
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    with pytest.raises(ImageReadError, match="loop"):
        read_image(loop)
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageReadError, match=r"pipe\.png.*not a regular file"):
        read_image(fifo)


def test_metadata_is_checked_against_the_tensors_before_building(tmp_path: Path) -> None:
    model = fcn_vgg16(num_classes=3, width=0.0625)
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, model, ModelInfo(["a", "b", "c"], model.config))
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["fcn_studio"])
        state = {k: f.get_tensor(k) for k in f.keys()}
    lie = {**meta, "class_names": [f"c{i}" for i in range(200)], "colors": [],
           "config": {**meta["config"], "num_classes": 200}}
    save_file(state, str(path), metadata={"fcn_studio": json.dumps(lie)})
    with pytest.raises(ClassCountError, match=r"m\.safetensors.*classes"):
        load_checkpoint(path)
    lie = {**meta, "config": {**meta["config"], "num_classes": 1000},
           "class_names": [str(i) for i in range(1000)], "colors": []}
    save_file(state, str(path), metadata={"fcn_studio": json.dumps(lie)})
    with pytest.raises(ClassCountError, match=r"m\.safetensors"):
        read_info(path)
    state["score_fr.weight"][0, 0, 0, 0] = float("nan")
    save_file(state, str(path), metadata={"fcn_studio": json.dumps(meta)})
    with pytest.raises(CheckpointError, match=r"m\.safetensors.*NaN"):
        load_checkpoint(path)
    state["score_fr.weight"] = state["score_fr.weight"].to(torch.int32)
    save_file(state, str(path), metadata={"fcn_studio": json.dumps(meta)})
    with pytest.raises(CheckpointError, match=r"m\.safetensors.*int32"):
        load_checkpoint(path)


def test_bad_train_state_metadata_is_a_checkpoint_error(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "train_state.safetensors"
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    for meta in ("[]", '{"iteration": "x"}', '{"iteration": 1, "param_groups": 5}',
                 '{"iteration": 1, "param_groups": [{}], "scalars": {"0": 3}}'):
        save_file({"opt.0.x": torch.zeros(1)}, str(path),
                  metadata={"fcn_studio_train_state": meta})
        with pytest.raises(CheckpointError, match=r"train_state\.safetensors"):
            load_train_state(path, opt)


@pytest.mark.parametrize("kw", [dict(iterations=0), dict(batch_size=0), dict(crop_size=0),
                                dict(lr=float("nan")), dict(workers=-1),
                                dict(variant_weights={"32s": 0, "16s": 0, "8s": 0})])
def test_invalid_training_values_are_config_errors(kw) -> None:
    with pytest.raises(ConfigError):
        TrainConfig(**kw)
    with pytest.raises(ConfigError, match="bogus"):
        preset("bogus")


def test_writes_name_the_file_and_keep_normal_permissions(tmp_path: Path) -> None:
    model = fcn_vgg16(num_classes=2, width=0.0625)
    old = os.umask(0o022)
    try:
        save_checkpoint(tmp_path / "m.safetensors", model, ModelInfo(["a", "b"], model.config))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.safetensors").stat().st_mode) == 0o644
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user that can write read-only folders")
        with pytest.raises(WriteError, match=r"ro/m\.safetensors"):
            save_checkpoint(ro / "m.safetensors", model, ModelInfo(["a", "b"], model.config))
    finally:
        ro.chmod(0o755)


def test_stale_temps_of_dead_writers_are_removed(tmp_path: Path) -> None:
    dead = tmp_path / ".m.safetensors.tmp-999999999-abc123.safetensors"
    mine = tmp_path / f".m.safetensors.tmp-{os.getpid()}-abc123.safetensors"
    other = tmp_path / "notes.tmp-1-x.txt"
    for p in (dead, mine, other):
        p.write_bytes(b"x")
        os.utime(p, (1e9, 1e9) if p is not mine else None)
    atomic_write_text(tmp_path / "keep.txt", "x")
    assert clean_stale_temps(tmp_path) == [dead]
    assert mine.exists() and other.exists()


def test_labelme2voc_failing_partway_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG")
    import base64

    good = {"shapes": [], "imageData": base64.b64encode(buf.getvalue()).decode()}
    (src / "a.json").write_text(json.dumps(good))
    (src / "b.json").write_text(json.dumps({"shapes": [], "imageData": "aGVsbG8="}))
    out = tmp_path / "out"
    with pytest.raises(LabelmeError, match=r"b\.json"):
        labelme2voc(src, out, LabelMap(("_background_",)))
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["in"]
    (src / "b.json").unlink()
    assert labelme2voc(src, out, LabelMap(("_background_",))) == ["a"]
    assert np.asarray(Image.open(out / "SegmentationClass" / "a.png")).max() == 0
