"""``python -m core``: every subcommand's help, and the commands end to end on tiny data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from core.data.imageio import read_mask


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "make-scenes",
                                     "labelme2voc", "convert", "download", "export-onnx"])
def test_every_subcommand_has_help(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: python -m core " + command in capsys.readouterr().out


def test_module_entry_point_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "core", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "make-scenes" in proc.stdout


def test_make_scenes_writes_a_voc_dataset(tmp_path: Path) -> None:
    assert main(["make-scenes", "--out", str(tmp_path / "s"), "--count", "5", "--seed", "3",
                 "--size", "48", "64"]) == 0
    ids = (tmp_path / "s/ImageSets/Segmentation/trainval.txt").read_text().split()
    assert len(ids) == 5
    assert read_mask(tmp_path / "s/SegmentationClass" / f"{ids[0]}.png").shape == (48, 64)


def test_evaluate_prints_a_table_and_writes_the_json(tiny_scenes, tiny_checkpoint, tmp_path,
                                                     capsys) -> None:
    out = tmp_path / "scores.json"
    assert main(["evaluate", "--model", str(tiny_checkpoint), "--data", str(tiny_scenes),
                 "--json", str(out), "--device", "cpu"]) == 0
    assert "mean IU" in capsys.readouterr().out
    scores = json.loads(out.read_text())
    assert list(scores) == ["32s", "16s", "8s"]
    for s in scores.values():
        assert set(s) == {"pixel_acc", "mean_acc", "mean_iu", "fw_iu", "per_class_iu"}
        assert all(0 <= s[k] <= 1 for k in ("pixel_acc", "mean_acc", "mean_iu", "fw_iu"))
        assert "background" in s["per_class_iu"]


def test_train_then_evaluate_the_result(tiny_scenes, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", "--data", str(tiny_scenes), "--out", str(out), "--width", "0.0625",
                 "--iterations", "2", "--batch-size", "2", "--crop", "48", "--device", "cpu",
                 "--weights", "1,0,1"]) == 0
    assert (out / "model.safetensors").is_file()
    assert main(["evaluate", "--model", str(out / "model.safetensors"), "--data",
                 str(tiny_scenes), "--device", "cpu"]) == 0


def test_bad_input_is_one_clear_line_and_status_2(tiny_scenes, tmp_path, capsys) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    assert main(["evaluate", "--model", str(bad), "--data", str(tiny_scenes)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "bad.safetensors" in err
    assert main(["evaluate", "--model", str(bad), "--data", str(tmp_path / "nowhere")]) == 2
    assert main(["train", "--data", str(tiny_scenes), "--out", str(tmp_path / "x"),
                 "--weights", "1,2"]) == 2
    assert "--weights" in capsys.readouterr().err


def test_wrong_class_count_between_data_and_model(tiny_scenes, tmp_path, capsys) -> None:
    import torch

    from core.checkpoints.checkpoint import ModelInfo, save_checkpoint
    from core.models import fcn_vgg16

    torch.manual_seed(0)
    model = fcn_vgg16(num_classes=3, width=0.0625)
    ckpt = tmp_path / "three.safetensors"
    save_checkpoint(ckpt, model, ModelInfo(["a", "b", "c"], model.config))
    assert main(["evaluate", "--model", str(ckpt), "--data", str(tiny_scenes)]) == 2
    assert "classes" in capsys.readouterr().err


def test_make_scenes_test_set_and_bad_arguments(tmp_path: Path, capsys) -> None:
    assert main(["make-scenes", "--out", str(tmp_path / "t"), "--count", "3", "--seed", "9",
                 "--size", "40", "40", "--val-fraction", "1"]) == 0
    assert len((tmp_path / "t/ImageSets/Segmentation/val.txt").read_text().split()) == 3
    capsys.readouterr()
    assert main(["make-scenes", "--out", str(tmp_path / "u"), "--count", "0"]) == 2
    assert "error: Scene count must be at least 1" in capsys.readouterr().err
