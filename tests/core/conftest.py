"""Fixtures for the core tests: tiny generated datasets and compact checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.checkpoints.checkpoint import ModelInfo, save_checkpoint
from core.data.scenes import SCENE_CLASSES, write_scene_dataset
from core.models import fcn_vgg16


@pytest.fixture(scope="session")
def tiny_scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve 64x64 generated scenes in VOC layout (train 9 / val 3)."""
    root = tmp_path_factory.mktemp("scenes")
    return write_scene_dataset(root, 12, seed=5, size=(64, 64), val_fraction=0.25)


@pytest.fixture()
def tiny_checkpoint(tmp_path: Path) -> Path:
    """A width-1/16 FCN over the scene classes, score layers randomized."""
    torch.manual_seed(0)
    model = fcn_vgg16(num_classes=len(SCENE_CLASSES), width=0.0625)
    torch.nn.init.normal_(model.score_fr.weight, std=0.5)
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(path, model, ModelInfo(list(SCENE_CLASSES), model.config, name="tiny"))
    return path
