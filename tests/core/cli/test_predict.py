"""``python -m core predict``: inputs, written files, palettes, errors and exit codes."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.checkpoints.checkpoint import ModelInfo, save_checkpoint
from core.cli.predict import add_parser, run
from core.data.imageio import read_image, read_mask, write_image
from core.errors import CheckpointError, FCNStudioError
from core.inference import Segmenter
from core.models import VARIANTS, fcn_vgg16
from core.outputs.files import find_inputs

pytestmark = pytest.mark.usefixtures("one_thread")

COLORS = [(10, 20, 30), (200, 0, 0), (0, 200, 0)]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = fcn_vgg16(num_classes=3, width=0.0625)
    with torch.no_grad():
        for name in ("score_fr", "score_pool4", "score_pool3"):
            getattr(model, name).weight.normal_(0, 0.05)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_checkpoint(path, model, ModelInfo(["bg", "cat/dog", "sky"], model.config, colors=COLORS))
    return path


def image(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def predict(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    return run(parser.parse_args(["predict", *argv]))


def test_folder_with_a_corrupt_file_writes_the_good_masks_and_returns_2(
    tmp_path: Path, checkpoint: Path, capsys
) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    good = image()
    write_image(src / "good.png", good)
    write_image(src / "sub" / "other.jpg", image(40, 40, seed=1))
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    code = predict([str(src), "--model", str(checkpoint), "--device", "cpu", "--out", str(out)])
    assert code == 2  # bad input: exit status 2, as every command
    err = capsys.readouterr().err
    assert "broken.png" in err and "good.png" not in err and "notes.txt" not in err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "good_8s.png", "sub/other_8s.png"
    ]
    mask_file = Image.open(out / "good_8s.png")
    assert mask_file.mode == "P"
    palette = np.array(mask_file.getpalette()).reshape(-1, 3)
    assert [tuple(c) for c in palette[:3]] == COLORS
    assert tuple(palette[255]) == (224, 224, 192)
    expected = Segmenter.from_checkpoint(checkpoint, device="cpu").predict(good, variants="8s")
    np.testing.assert_array_equal(read_mask(out / "good_8s.png"), expected["8s"].labels)


def test_all_outputs(tmp_path: Path, checkpoint: Path) -> None:
    write_image(tmp_path / "a.png", image())
    out = tmp_path / "out"
    code = predict([
        str(tmp_path / "a.png"), "--model", str(checkpoint), "--device", "cpu",
        "--out", str(out), "--variant", "all", "--overlay", "--heatmaps", "--entropy",
    ])
    assert code == 0
    names = {p.name for p in out.iterdir()}
    for v in ("32s", "16s", "8s"):
        assert {f"a_{v}.png", f"a_{v}_overlay.jpg", f"a_{v}_entropy.png"} <= names
        assert {f"a_{v}_prob_00_bg.png", f"a_{v}_prob_01_cat_dog.png",
                f"a_{v}_prob_02_sky.png"} <= names
    assert len(names) == 3 * (1 + 1 + 1 + 3)
    assert read_image(out / "a_8s_overlay.jpg").shape == (48, 64, 3)


def test_missing_input_and_missing_model(tmp_path: Path, checkpoint: Path, capsys) -> None:
    write_image(tmp_path / "a.png", image())
    out = tmp_path / "out"
    args = [str(tmp_path / "a.png"), str(tmp_path / "nope.jpg"), "--out", str(out)]
    assert predict([*args, "--model", str(checkpoint), "--device", "cpu"]) == 2
    assert "nope.jpg" in capsys.readouterr().err
    assert (out / "a_8s.png").is_file()
    with pytest.raises(CheckpointError):
        predict([str(tmp_path / "a.png"), "--model", str(tmp_path / "x.safetensors")])
    assert predict([str(tmp_path / "empty_dir_missing")]) == 2


def test_find_inputs_unique_stems_and_skips_the_output_folder(tmp_path: Path) -> None:
    for name in ("x.png", "x.jpg", "y.PNG", "out/x_8s.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    files, errors = find_inputs([tmp_path, tmp_path / "x.png"], exclude=tmp_path / "out")
    assert errors == []
    assert sorted(f.stem for f in files) == ["x", "x_png", "y"]
    assert len({f.path.resolve() for f in files}) == 3


def test_importing_the_cli_module_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = ("import sys, core.cli, core.cli.predict, core.outputs.files; "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[3])
    from core.variants import VARIANTS as TORCH_FREE

    assert TORCH_FREE is VARIANTS  # one list


def test_the_backend_is_chosen_and_said(tmp_path: Path, checkpoint: Path, capsys) -> None:
    from core.data.imageio import read_mask

    write_image(tmp_path / "a.png", image())
    masks = {}
    for backend in ("eager", "torch:cl=1"):
        out = tmp_path / backend.replace(":", "_").replace("=", "")
        assert predict([str(tmp_path / "a.png"), "--model", str(checkpoint), "--device", "cpu",
                        "--out", str(out), "--backend", backend]) == 0
        err = capsys.readouterr().err
        assert err.startswith("inference: streamed bands (fp32, NCHW) on cpu" if backend == "eager"
                              else "inference: streamed bands (fp32, channels_last) on cpu")
        masks[backend] = read_mask(out / "a_8s.png")
    assert np.array_equal(masks["eager"], masks["torch:cl=1"])
    with pytest.raises(FCNStudioError, match="Unknown backend"):
        predict([str(tmp_path / "a.png"), "--model", str(checkpoint), "--backend", "warp"])
