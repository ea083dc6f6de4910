"""The bundled default model meets its bar on freshly generated, never-seen scenes."""

from __future__ import annotations

import pytest

from core.checkpoints.checkpoint import load_checkpoint, read_info
from core.data.scenes import SCENE_CLASSES, write_scene_dataset
from core.data.voc import open_dataset
from core.paths import DEFAULT_MODEL
from core.training.evaluate import evaluate


def test_default_model_is_small_and_describes_itself() -> None:
    assert DEFAULT_MODEL.stat().st_size < 20 * 1024 * 1024
    info = read_info(DEFAULT_MODEL)
    assert tuple(info.class_names) == SCENE_CLASSES
    assert info.config.conv1_padding == 100 and info.config.width == 0.125
    assert any("held-out" in str(m.get("split")) for m in info.metrics)


def test_default_model_ranks_8s_over_16s_over_32s_on_unseen_scenes(tmp_path) -> None:
    root = write_scene_dataset(tmp_path / "heldout", 40, seed=31337, val_fraction=1.0)
    pairs, names = open_dataset(root, split="val")
    model, info = load_checkpoint(DEFAULT_MODEL)
    scores = evaluate(model, pairs, info.preprocessing, names)
    miu = {v: s["mean_iu"] for v, s in scores.items()}
    assert miu["8s"] >= 0.80, miu
    assert miu["8s"] > miu["16s"] > miu["32s"], miu
    assert scores["8s"]["per_class_iu"]["wire"] > scores["32s"]["per_class_iu"]["wire"] + 0.3


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
def test_default_model_outputs_are_each_sensible(variant) -> None:
    info = read_info(DEFAULT_MODEL)
    held = next(m for m in info.metrics if "held-out" in str(m.get("split")))
    assert 0.4 < held[variant]["mean_iu"] <= 1.0
