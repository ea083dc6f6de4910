"""A new model for the user's classes from a source trunk: kept weights, fresh classes, the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.checkpoints.checkpoint import ModelInfo, load_checkpoint, save_checkpoint
from core.cli import main as cli_main
from core.errors import FCNStudioError
from core.models import fcn_vgg16
from core.models.fcn import SCORE_LAYERS
from core.models.upsampling import bilinear_kernel
from core.training.new_model import match_classes, new_model, transfer, untrained_classes

SOURCE_CLASSES = ["background", "disc", "box", "wire"]


def _source(learned_skips: bool = False) -> tuple[torch.nn.Module, ModelInfo]:
    torch.manual_seed(3)
    model = fcn_vgg16(num_classes=4, width=0.0625).eval()
    with torch.no_grad():
        for name in SCORE_LAYERS:
            getattr(model, name).weight.normal_()
            getattr(model, name).bias.normal_()
        if learned_skips:
            model.upscore2.weight.add_(0.05 * torch.randn_like(model.upscore2.weight))
    colors = [(0, 0, 0), (10, 20, 30), (40, 50, 60), (70, 80, 90)]
    return model, ModelInfo(SOURCE_CLASSES, model.config, colors=colors, name="src", id="abc")


def test_classes_match_by_name_ignoring_case_and_spacing() -> None:
    m = match_classes(["Background", "ring", "Wire", "box"], SOURCE_CLASSES)
    assert m.pairs == ((0, 0), (2, 3), (3, 2))
    assert m.new == ("ring",) and m.dropped == ("disc",)


def test_matching_classes_keep_their_weights_and_new_ones_start_at_zero() -> None:
    source, info = _source(learned_skips=True)
    model, new_info = transfer(source, info, ["background", "ring", "wire", "box"])
    src = source.state_dict()
    own = model.state_dict()
    for key in src:  # the whole trunk
        if key.split(".")[0] in model._trunk:
            assert torch.equal(own[key], src[key]), key
    for layer in SCORE_LAYERS:
        w, b = own[f"{layer}.weight"], own[f"{layer}.bias"]
        for new, old in ((0, 0), (2, 3), (3, 2)):
            assert torch.equal(w[new], src[f"{layer}.weight"][old])
            assert torch.equal(b[new], src[f"{layer}.bias"][old])
        assert not w[1].any() and not b[1].any()  # "ring": the paper's zero init
    up = own["upscore2.weight"]
    assert torch.equal(up[[0, 2, 3]][:, [0, 2, 3]], src["upscore2.weight"][[0, 3, 2]][:, [0, 3, 2]])
    assert torch.equal(up[1], bilinear_kernel(4, 4)[1])
    assert torch.equal(own["upscore8.weight"], bilinear_kernel(4, 16))
    assert new_info.parent == "abc" and new_info.class_names == ["background", "ring", "wire",
                                                                  "box"]
    assert new_info.colors[2] == (70, 80, 90) and new_info.colors[3] == (40, 50, 60)
    assert new_info.training["kept_classes"] == ["background", "wire", "box"]
    assert new_info.training["new_classes"] == ["ring"]
    assert model.offsets == source.offsets  # the exact FCN geometry


def test_kept_classes_score_exactly_as_in_the_source() -> None:
    source, info = _source()
    model, _ = transfer(source, info, ["box", "background"])  # a subset, reordered
    x = torch.randn(1, 3, 70, 90)
    with torch.no_grad():
        ref, got = source(x), model.eval()(x)
    for v in ref:
        torch.testing.assert_close(got[v][:, 0], ref[v][:, 2], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got[v][:, 1], ref[v][:, 0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("names", [[], ["a", "A"], ["a", ""], [f"c{i}" for i in range(300)]])
def test_bad_class_lists_are_clear_errors(names: list[str]) -> None:
    source, info = _source()
    with pytest.raises(FCNStudioError):
        transfer(source, info, names)


def test_new_model_from_a_checkpoint_file(tmp_path: Path) -> None:
    source, info = _source()
    path = tmp_path / "src.safetensors"
    saved = save_checkpoint(path, source, info)
    model, new_info = new_model(["background", "mystery"], init=path,
                                colors=[(1, 2, 3), (4, 5, 6)])
    assert new_info.parent == saved.id and new_info.colors == [(1, 2, 3), (4, 5, 6)]
    out = tmp_path / "new.safetensors"
    save_checkpoint(out, model, new_info)
    again, again_info = load_checkpoint(out)
    assert again_info.class_names == ["background", "mystery"]
    assert torch.equal(again.score_fr.weight[0], source.score_fr.weight[0])
    # until it is trained, the saved model says which classes it knows nothing of
    assert untrained_classes(again_info) == ["mystery"]
    assert untrained_classes(info) == [] and untrained_classes(None) == []


def test_cli_train_with_classes_and_init_makes_a_model_for_those_classes(
    tmp_path: Path, capsys
) -> None:
    from core.data.imageio import write_image, write_mask
    from core.data.palette import VOC_PALETTE

    source, info = _source()
    init = tmp_path / "src.safetensors"
    saved = save_checkpoint(init, source, info)
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for i in range(3):
        write_image(root / "images" / f"{i}.png", rng.integers(0, 255, (64, 64, 3), np.uint8))
        mask = np.full((64, 64), 255, np.uint8)
        mask[5:20, 5:20] = 0
        mask[30:50, 30:50] = 1
        write_mask(root / "masks" / f"{i}.png", mask, VOC_PALETTE)
    classes = tmp_path / "labels.txt"
    classes.write_text("__ignore__\nbackground\nmystery\n")
    out = tmp_path / "out"
    code = cli_main(["train", "--data", str(root), "--out", str(out), "--classes", str(classes),
                     "--init", str(init), "--iterations", "2", "--batch-size", "1",
                     "--device", "cpu", "--val-split", "", "--crop", "64"])
    assert code == 0
    assert "score weights kept for background; new: mystery" in capsys.readouterr().err
    model, trained = load_checkpoint(next(out.glob("*.safetensors")))
    assert trained.class_names == ["background", "mystery"]
    assert trained.parent == saved.id  # the trunk's source is the parent
    assert not torch.equal(model.conv1_1.weight, source.conv1_1.weight)  # trained
