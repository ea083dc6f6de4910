"""Shared by the projects tests: images, a project made with the core, reading it back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pytestqt.qtbot import QtBot

from app.shell.main_window import MainWindow
from core.annotation.project import Project
from core.data.imageio import read_mask, write_image
from tests.app.conftest import make_scene

CELL_CLASSES = ["_background_", "cell", "nucleus", "debris"]


def write_images(folder: Path, n: int = 3) -> list[Path]:
    """``n`` small scenes as PNGs in ``folder``."""
    out = []
    for i in range(n):
        image, _ = make_scene(i)
        path = folder / f"img_{i:02d}.png"
        write_image(path, image)
        out.append(path)
    return out


def scene_mask(i: int) -> np.ndarray:
    """The mask of scene ``i`` (labels 0..3 and a few void pixels)."""
    return make_scene(i)[1]


def make_project(folder: Path, images: list[Path], names: list[str] = CELL_CLASSES,
                 masks: bool = True) -> Project:
    """A project with ``names``; each image's scene mask saved (corrected whole)."""
    project = Project.create(folder, names, images)
    if masks:
        for i, image_id in enumerate(project.ids()):
            project.save_mask(image_id, scene_mask(i), True)
    return project


def disk_masks(folder: Path) -> dict[str, np.ndarray]:
    """The project's saved masks by image id."""
    return {p.stem: read_mask(p) for p in sorted((folder / "SegmentationClass").glob("*.png"))}


def recorded_classes(folder: Path) -> list[dict]:
    """``classes`` of project.json."""
    return json.loads((folder / "project.json").read_text())["classes"]


def new_window(qtbot: QtBot) -> MainWindow:
    """A shown window without a model (none is asked for)."""
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    return win


def errors(win: MainWindow) -> list[str]:
    """The texts of the window's error messages."""
    return [n.text for n in win.notifications.messages if n.level == "error"]
