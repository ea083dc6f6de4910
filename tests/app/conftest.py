"""Fixtures of the app tests: a tiny checkpoint, a sample dataset, an isolated window, an
annotating window and the mouse helpers that paint on it."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from app.shell.main_window import MainWindow

CLASS_NAMES = ["background", "disc", "box", "wire"]
Screenshot = Callable[[QWidget, str], Path]
"""``screenshot(widget, name)``: save the widget's pixels to artifacts/screenshots/<name>.png."""
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def make_scene(seed: int, size: tuple[int, int] = (96, 128)) -> tuple[np.ndarray, np.ndarray]:
    """A small RGB image with a disc, a box and a wire, and its label mask."""
    rng = np.random.default_rng(seed)
    h, w = size
    image = (rng.normal(110, 12, (h, w, 3))).clip(0, 255).astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    cx, cy, r = int(rng.integers(20, w - 20)), int(rng.integers(20, h - 20)), int(h // 6)
    cv2.circle(image, (cx, cy), r, (220, 60, 40), -1)
    cv2.circle(mask, (cx, cy), r, 1, -1)
    x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
    cv2.rectangle(image, (x0, y0), (x0 + w // 4, y0 + h // 4), (40, 70, 220), -1)
    cv2.rectangle(mask, (x0, y0), (x0 + w // 4, y0 + h // 4), 2, -1)
    cv2.line(image, (0, int(rng.integers(0, h))), (w - 1, int(rng.integers(0, h))),
             (230, 220, 40), 3)
    cv2.line(mask, (0, 0), (0, 0), 3, 1)
    mask[(image[:, :, 0] > 200) & (image[:, :, 1] > 200)] = 3
    mask[0, :4] = 255  # a few void pixels
    return image, mask


def write_samples(root: Path, n: int = 3, size: tuple[int, int] = (96, 128)) -> Path:
    """A folder-pairs dataset: ``images/``, ``masks/`` (palette PNG), ``class_names.txt``."""
    from core.data.imageio import write_image, write_mask

    for i in range(n):
        image, mask = make_scene(i, size)
        write_image(root / "images" / f"sample_{i:02d}.png", image)
        write_mask(root / "masks" / f"sample_{i:02d}.png", mask)
    (root / "class_names.txt").write_text("\n".join(CLASS_NAMES) + "\n", encoding="utf-8")
    return root


def make_checkpoint(path: Path, num_classes: int = len(CLASS_NAMES), seed: int = 0) -> Path:
    """A tiny FCN checkpoint with random score layers (so predictions vary over the image)."""
    import torch

    from core.checkpoints.checkpoint import ModelInfo, save_checkpoint
    from core.models.fcn import fcn_vgg16

    torch.manual_seed(seed)
    model = fcn_vgg16(num_classes=num_classes, width=0.0625)
    with torch.no_grad():
        for name in ("score_fr", "score_pool4", "score_pool3"):
            layer = getattr(model, name)
            layer.weight.normal_(0.0, 1.0)
            layer.bias.zero_()
    names = CLASS_NAMES[:num_classes] + [f"class{i}" for i in range(len(CLASS_NAMES),
                                                                     num_classes)]
    info = ModelInfo(names, model.config, name="tiny test model",
                     training={"epochs": 1, "lr": 0.01}, metrics=[{"epoch": 1, "mean_iu": 0.1}])
    save_checkpoint(path, model, info)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a tiny 4-class checkpoint."""
    return make_checkpoint(tmp_path_factory.mktemp("model") / "tiny.safetensors")


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-image folder-pairs dataset with masks."""
    return write_samples(tmp_path_factory.mktemp("samples"))


@pytest.fixture(autouse=True)
def app_env(monkeypatch: pytest.MonkeyPatch, tiny_model: Path, tmp_path: Path) -> None:
    """Point the app at the tiny model and at a throwaway settings file."""
    monkeypatch.setenv("FCN_STUDIO_MODEL", str(tiny_model))
    monkeypatch.setenv("FCN_STUDIO_SETTINGS", str(tmp_path / "settings.ini"))


@pytest.fixture
def window(qtbot: QtBot, app_env: None) -> Iterator[MainWindow]:
    """A shown MainWindow (the model is not loaded until a test asks)."""
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.controller.shutdown()


@pytest.fixture
def loaded_window(qtbot: QtBot, window: MainWindow, samples: Path) -> MainWindow:
    """A window with the samples open, the tiny model loaded and the first image segmented."""
    with qtbot.waitSignal(window.controller.resultReady, timeout=60000):
        window.start([samples])
    return window


@pytest.fixture
def screenshot() -> Screenshot:
    """``screenshot(widget, name)`` saves ``widget.grab()`` to artifacts/screenshots/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def save(widget: QWidget, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        assert widget.grab().save(str(path)), f"could not save {path}"
        return path

    return save



@pytest.fixture
def own_samples(samples: Path, tmp_path: Path) -> Path:
    """A private copy of the samples (the default project is created next to them)."""
    return Path(shutil.copytree(samples, tmp_path / "samples"))


def open_window(qtbot: QtBot, folder: Path) -> MainWindow:
    """A new window on ``folder``, first image segmented, zoomed in for exact clicks."""
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    with qtbot.waitSignal(win.controller.resultReady, timeout=60000):
        win.start([folder])
    win.viewer.canvas.set_zoom(4.0)
    win.viewer.canvas.centerOn(QPointF(60, 45))
    return win


@pytest.fixture
def editor(qtbot: QtBot, app_env: None, own_samples: Path) -> Iterator[MainWindow]:
    """A window on a private copy of the samples, the first one segmented, zoomed to 400%."""
    win = open_window(qtbot, own_samples)
    yield win
    win.controller.shutdown()


def vpos(win: MainWindow, x: int, y: int) -> QPoint:
    """The viewport position of image pixel ``(x, y)``'s centre."""
    canvas = win.viewer.canvas
    pos = canvas.mapFromScene(QPointF(x + 0.5, y + 0.5))
    assert canvas.viewport().rect().contains(pos), f"pixel {(x, y)} is not visible"
    return pos


def drag(qtbot: QtBot, win: MainWindow, points: list[tuple[int, int]]) -> None:
    """Press at the first point, move through the others, release at the last."""
    vp = win.viewer.canvas.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=vpos(win, *points[0]))
    for p in points[1:]:
        qtbot.mouseMove(vp, vpos(win, *p))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=vpos(win, *points[-1]))


def click(qtbot: QtBot, win: MainWindow, x: int, y: int) -> None:
    """A left click on pixel ``(x, y)``."""
    qtbot.mouseClick(win.viewer.canvas.viewport(), Qt.MouseButton.LeftButton,
                     pos=vpos(win, x, y))
