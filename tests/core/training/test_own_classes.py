"""Your own classes: the class limit, a project's training rounds (states, held-out marks),
the shared steps of the app and ``train --heads-only``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.annotation.classes import MAX_CLASSES
from core.annotation.project import CORRECTED, NOT_ANNOTATED, ROUGH, Project
from core.checkpoints.checkpoint import load_checkpoint
from core.cli import main as cli_main
from core.data.imageio import read_image, write_image, write_mask
from core.data.mosaics import scribbles
from core.data.scenes import generate_scene, scene_seed
from core.errors import FCNStudioError
from core.training.finetune import FineTuneConfig, fine_tune
from core.training.new_model import new_model, untrained_classes
from core.training.own_classes import train_own_classes

pytestmark = pytest.mark.usefixtures("one_thread")

USER_CLASSES = ["background", "disc", "ring"]  # the scene classes: disc=1, ring=4
SCENE_TO_USER = {0: 0, 1: 1, 2: 0, 3: 0, 4: 2, 5: 0, 6: 0}


def _user_mask(mask: np.ndarray) -> np.ndarray:
    lut = np.full(256, 255, np.uint8)
    for a, b in SCENE_TO_USER.items():
        lut[a] = b
    return lut[mask]


def _images(folder: Path, n: int) -> tuple[list[Path], list[np.ndarray]]:
    paths, masks = [], []
    for i in range(n):
        rgb, mask = generate_scene(scene_seed(31, i), (64, 64))
        path = folder / f"img_{i}.png"
        write_image(path, rgb)
        paths.append(path)
        masks.append(scribbles(_user_mask(mask), 0.05, i))
    return paths, masks


def test_a_model_takes_as_many_classes_as_a_project(tiny_checkpoint: Path) -> None:
    names = [f"c{i}" for i in range(MAX_CLASSES)]
    model, info = new_model(names, init=tiny_checkpoint)
    assert info.num_classes == MAX_CLASSES == 255 and model.score_fr.out_channels == 255
    with pytest.raises(FCNStudioError, match="at most 255"):
        new_model([*names, "one more"], init=tiny_checkpoint)


def test_image_states_and_held_out_marks_are_kept_in_the_project(tmp_path: Path) -> None:
    paths, masks = _images(tmp_path, 4)
    project = Project.create(tmp_path / "p", USER_CLASSES, paths)
    ids = project.ids()
    assert [project.image_state(i) for i in ids] == [NOT_ANNOTATED] * 4
    project.save_mask(ids[0], masks[0], masks[0] != 255)  # strokes on void: rough labels
    dense = np.zeros((64, 64), np.uint8)
    dense[:8] = 1
    project.save_mask(ids[1], dense, dense == 1)  # a mostly labelled mask: corrected
    project.save_mask(ids[2], np.full((64, 64), 255, np.uint8), False)  # nothing by the user
    assert project.set_held_out(ids[1], True) and not project.set_held_out(ids[1], True)
    assert [project.image_state(i) for i in ids] == [ROUGH, CORRECTED, NOT_ANNOTATED,
                                                     NOT_ANNOTATED]
    assert project.training_ids() == [ids[0]] and project.held_out_ids() == [ids[1]]
    again = Project.open(project.folder)
    assert [again.image_state(i) for i in ids] == [ROUGH, CORRECTED, NOT_ANNOTATED,
                                                   NOT_ANNOTATED]
    assert again.held_out_ids() == [ids[1]] and again.training_ids() == [ids[0]]
    again.set_held_out(ids[1], False)
    assert Project.open(project.folder).training_ids() == [ids[0], ids[1]]
    # a project saved before the labelled share was recorded: read from the mask once
    data = json.loads((project.folder / "project.json").read_text())
    for entry in data["images"]:
        entry.pop("labelled")
        entry.pop("held_out")
    (project.folder / "project.json").write_text(json.dumps(data))
    old = Project.open(project.folder)
    assert [old.image_state(i) for i in ids[:2]] == [ROUGH, CORRECTED]


def test_train_own_classes_is_make_model_then_fine_tune_from_the_saved_checkpoint(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    paths, masks = _images(tmp_path, 2)
    items = [(read_image(p), m, None) for p, m in zip(paths, masks, strict=True)]
    config = FineTuneConfig.for_mode("fast", iterations=6)
    info, result = train_own_classes(USER_CLASSES, tiny_checkpoint, items, tmp_path / "cli",
                                     config=config)
    assert info.training["kind"] == "new-model" and info.parent is not None
    assert result.info.parent == info.id and result.iterations == 6
    assert untrained_classes(result.info) == []  # trained: its record is the fine-tune's
    # the app's way: the new model's checkpoint loaded (another thread), then fine_tune
    model, loaded = load_checkpoint(tmp_path / "cli" / "new-model.safetensors")
    assert loaded.id == info.id
    app = fine_tune(model, loaded, items, config, out_path=tmp_path / "app.safetensors")
    ref = result.model.state_dict()
    for key, value in app.model.state_dict().items():
        torch.testing.assert_close(value, ref[key], rtol=1e-5, atol=1e-6)
    assert FineTuneConfig.for_mode("full").iterations == 500
    with pytest.raises(ValueError):
        FineTuneConfig.for_mode("slow")


def test_cli_heads_only_on_a_project_and_on_its_dataset(tiny_checkpoint: Path,
                                                        tmp_path: Path, capsys) -> None:
    paths, masks = _images(tmp_path, 3)
    project = Project.create(tmp_path / "p", USER_CLASSES, paths)
    for image_id, mask in zip(project.ids(), masks, strict=True):
        project.save_mask(image_id, mask, mask != 255)
    project.set_held_out(project.ids()[2], True)
    labels = tmp_path / "labels.txt"
    labels.write_text("__ignore__\n" + "\n".join(USER_CLASSES) + "\n")
    common = ["--classes", str(labels), "--init", str(tiny_checkpoint), "--heads-only",
              "--iterations", "5", "--device", "cpu", "--threads", "1"]
    assert cli_main(["train", "--data", str(project.folder), "--out", str(tmp_path / "a"),
                     *common]) == 0
    out = capsys.readouterr()
    assert "held out (1), before:" in out.out and "held out (1), after:" in out.out
    assert "kept for background, disc, ring" in out.err and "trained on 2 image(s)" in out.err
    # the same images and masks as a dataset (images/ + masks/), the held-out one left out
    data = tmp_path / "data"
    for path, mask in list(zip(paths, masks, strict=True))[:2]:
        write_image(data / "images" / path.name, read_image(path))
        write_mask(data / "masks" / path.name, mask)
    assert cli_main(["train", "--data", str(data), "--out", str(tmp_path / "b"), *common]) == 0
    a, a_info = load_checkpoint(tmp_path / "a" / "model.safetensors")
    b, _ = load_checkpoint(tmp_path / "b" / "model.safetensors")
    assert a_info.class_names == USER_CLASSES and a_info.training["kind"] == "fine-tune"
    assert a_info.parent == load_checkpoint(tmp_path / "a" / "new-model.safetensors")[1].id
    for key, value in a.state_dict().items():
        torch.testing.assert_close(value, b.state_dict()[key], rtol=1e-5, atol=1e-6)
    assert cli_main(["train", "--data", str(data), "--out", str(tmp_path / "c"),
                     "--heads-only", "--iterations", "1"]) == 2
    assert "--init CHECKPOINT or --imagenet" in capsys.readouterr().err
