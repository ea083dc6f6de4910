"""Opening, errors, exports, recent files, drag and drop, model info and devices."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from pytestqt.qtbot import QtBot

from app.shell.main_window import MainWindow
from core.outputs.colormaps import DEFAULT_COLORMAP, colormap
from tests.app.conftest import CLASS_NAMES, Screenshot, make_checkpoint


def test_corrupt_file_gives_a_message_and_the_window_lives_on(
    qtbot: QtBot, loaded_window: MainWindow, tmp_path: Path, screenshot: Screenshot
) -> None:
    win = loaded_window
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    win.open_paths([broken])
    note = win.notifications.last("error")
    assert note is not None and "broken.png" in note.text and "Cannot read image" in note.text
    assert win.state.document is None
    assert "broken.png" in win.viewer.placeholder.text()
    assert win.isVisible()
    screenshot(win, "unreadable_file")
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.full((40, 50, 3), 120, np.uint8))
    with qtbot.waitSignal(win.controller.resultReady, timeout=30000):
        win.open_paths([good])
    assert win.state.document.title == "good.png"


def test_gray_16bit_and_alpha_images_open(
    qtbot: QtBot, loaded_window: MainWindow, tmp_path: Path
) -> None:
    win = loaded_window
    gray16 = np.linspace(0, 65535, 40 * 50).reshape(40, 50).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "a_gray16.png"), gray16)
    rgba = np.zeros((30, 20, 4), np.uint8)
    rgba[..., 2] = 255
    rgba[..., 3] = 128
    cv2.imwrite(str(tmp_path / "b_alpha.png"), rgba)
    cv2.imwrite(str(tmp_path / "c_gray.jpg"), np.full((25, 35), 77, np.uint8))
    win.open_paths([tmp_path])
    assert win.file_list.count() == 3
    for i in range(3):
        win.navigator.go(i)
        doc = win.state.document
        assert doc is not None and doc.image.ndim == 3 and doc.image.shape[2] == 3
    assert win.navigator.entries[1].image.name == "b_alpha.png"


def test_bad_model_is_reported_and_the_old_one_stays(
    qtbot: QtBot, loaded_window: MainWindow, tmp_path: Path
) -> None:
    win = loaded_window
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint at all")
    with qtbot.waitSignal(win.controller.modelFailed, timeout=30000):
        win.load_model(str(bad))
    note = win.notifications.last("error")
    assert note is not None and "Could not load the model" in note.text
    assert "bad.safetensors" in note.text
    assert win.controller.model is not None
    assert win.status.model_label.text().startswith("Model: tiny test model")


def test_loading_another_model_keeps_results_per_model(
    qtbot: QtBot, loaded_window: MainWindow, tmp_path: Path
) -> None:
    win = loaded_window
    doc = win.state.document
    other = make_checkpoint(tmp_path / "other.safetensors", num_classes=5, seed=3)
    with qtbot.waitSignal(win.controller.resultReady, timeout=30000):
        win.open_paths([other])
    assert len(doc.predictions) == 2
    assert win.legend.topLevelItemCount() == 5
    assert "class4" in win.model_panel.toPlainText()


def test_model_panel_and_device_menu(qtbot: QtBot, loaded_window: MainWindow) -> None:
    win = loaded_window
    text = win.model_panel.toPlainText()
    for word in ["tiny test model", *CLASS_NAMES, "width", "0.0625", "Preprocessing",
                 "Training", "mean_iu"]:
        assert word in text
    devices = win.actions.device_actions
    assert "auto" in devices and "cpu" in devices
    assert devices["auto"].isChecked()
    with qtbot.waitSignal(win.controller.modelLoaded, timeout=30000):
        devices["cpu"].trigger()
    assert win.settings.device == "cpu"
    assert win.controller.model.device == "cpu"


def test_exports(qtbot: QtBot, loaded_window: MainWindow, tmp_path: Path) -> None:
    from core.data.imageio import read_image, read_mask

    win = loaded_window
    doc = win.state.document
    mask = win.exporter.mask(tmp_path / "mask.png")
    np.testing.assert_array_equal(read_mask(mask), win.state.output("8s").labels)
    overlay = read_image(win.exporter.overlay(tmp_path / "overlay.png"))
    assert overlay.shape == doc.image.shape
    win.actions.contours.trigger()  # exported as shown: only the boundaries are colored
    lines = read_image(win.exporter.overlay(tmp_path / "contours.png"))
    from app.common.render import contour_labels

    untouched = contour_labels(win.state.output("8s").labels) == 255
    assert np.array_equal(lines[untouched], doc.image[untouched])
    assert not np.array_equal(lines, overlay)
    win.actions.contours.trigger()
    heat = read_image(win.exporter.heatmap(tmp_path / "heat.png"))
    assert heat.shape == doc.image.shape
    st = win.state
    probs = st.output(st.heatmap_variant).probability(st.heatmap_class).astype(np.float64)
    lut = colormap(DEFAULT_COLORMAP).astype(np.float64)  # 256 x 3, index = value * 255
    alpha = max(st.overlay_opacity, 0.35)  # exported as shown: the colormap over the image
    expected = doc.image * (1 - alpha) + lut[np.round(probs * 255).astype(int)] * alpha
    assert np.abs(heat - expected).max() <= 3  # rounding of the index and of the blend
    st.set_heatmap(mode="alone")
    alone = read_image(win.exporter.heatmap(tmp_path / "heat_alone.png")).astype(np.float64)
    # each pixel's color is the colormap's color of its probability
    nearest = np.abs(alone.reshape(-1, 1, 3) - lut[None]).sum(axis=2).argmin(axis=1)
    assert np.abs(nearest / 255 - probs.reshape(-1)).max() <= 1.5 / 255
    assert not np.array_equal(alone, heat)
    grid = read_image(win.exporter.grid(tmp_path / "grid.png"))
    assert grid.shape[0] > doc.height and grid.shape[1] > 3 * doc.width
    assert "Exported the compare grid" in win.notifications.last().text
    assert win.exporter.mask(tmp_path / "no_such_dir" / "x.txt") is None
    assert win.notifications.last("error") is not None


def test_reference_mask_can_be_loaded_and_must_fit(
    qtbot: QtBot, loaded_window: MainWindow, tmp_path: Path
) -> None:
    from core.data.imageio import write_mask

    win = loaded_window
    doc = win.state.document
    wrong = tmp_path / "wrong.png"
    write_mask(wrong, np.zeros((5, 5), np.uint8))
    assert not win.load_reference(wrong)
    assert "Reference mask not loaded" in win.notifications.last("error").text
    right = tmp_path / "right.png"
    write_mask(right, np.ones((doc.height, doc.width), np.uint8))
    assert win.load_reference(right)
    assert win.stats.value("pixel_acc", "8s") != ""
    assert doc.reference_path == right
    assert win.notifications.last().text == f"Loaded reference mask {right}"
    voc = tmp_path / "voc_label.png"  # a mask of another class list (VOC's 21 classes)
    labels = np.zeros((doc.height, doc.width), np.uint8)
    labels[:10, :10], labels[-10:, -10:] = 15, 255
    write_mask(voc, labels)
    assert win.load_reference(voc)
    said = win.notifications.last("warning").text
    assert "labels 15 beyond this model's" in said and "no metrics" in said


def test_recent_files_and_drop(qtbot: QtBot, window: MainWindow, samples: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(samples / "images" / "sample_02.png"))])
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)
    assert window.state.document.title == "sample_02.png"
    assert window.state.document.reference is not None
    recent = window.settings.recent_files()
    assert recent and recent[0].endswith("sample_02.png")
    titles = [a.text() for a in window.actions.recent_menu.actions()]
    assert any(t.endswith("sample_02.png") for t in titles)


def test_keys_move_through_the_list(qtbot: QtBot, window: MainWindow, samples: Path) -> None:
    window.actions.autorun.setChecked(False)
    window.open_paths([samples])
    window.activateWindow()
    window.viewer.canvas.setFocus()
    qtbot.keyClick(window.viewer.canvas, Qt.Key.Key_D)
    assert window.navigator.index == 1
    qtbot.keyClick(window.viewer.canvas, Qt.Key.Key_PageDown)
    assert window.navigator.index == 2
    qtbot.keyClick(window.viewer.canvas, Qt.Key.Key_A)
    assert window.navigator.index == 1
    assert window.file_list.currentRow() == 1
    window.file_list.setCurrentRow(0)
    assert window.state.document.title == "sample_00.png"


def test_out_of_memory_is_reported_and_the_app_goes_on(
    qtbot: QtBot, loaded_window: MainWindow, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from core.inference import Segmenter

    def out_of_memory(self: Segmenter, image: np.ndarray, **kw: object) -> None:
        raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(Segmenter, "predict", out_of_memory)
    win = loaded_window
    with qtbot.waitSignal(win.controller.failed, timeout=30000):
        assert win.run_current()
    note = win.notifications.last("error")
    assert "out of memory" in note.text and "CPU" in note.text
    assert win.isVisible() and not win.controller.busy


def test_open_images_adds_to_the_list_and_dialogs_start_at_the_current_folder(
    loaded_window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtWidgets import QFileDialog

    from core.data.imageio import write_image

    win = loaded_window
    before = [e.image for e in win.navigator.entries]
    extra = tmp_path / "extra.png"
    write_image(extra, np.zeros((40, 50, 3), np.uint8))
    starts: list[str] = []

    def pick_files(_parent, _title, start, _filter):
        starts.append(start)
        return [str(extra)], ""

    def pick_folder(_parent, _title, start):
        starts.append(start)
        return ""

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(pick_files))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(pick_folder))
    current_folder = str(win.state.document.path.parent)
    win.open_folder()
    win.open_files()
    assert starts == [current_folder, current_folder]
    assert [e.image for e in win.navigator.entries] == [*before, extra]  # added, not replaced
    assert win.navigator.current.image == extra


def test_the_canvas_has_the_keyboard_when_the_first_image_shows(
    qtbot: QtBot, app_env: None, own_samples: Path
) -> None:
    from tests.app.conftest import open_window

    win = open_window(qtbot, own_samples)
    win.activateWindow()
    qtbot.waitUntil(lambda: win.focusWidget() is not None, timeout=5000)
    assert win.focusWidget() is win.viewer.canvas  # not the overlay combo of the toolbar
    variant = win.state.overlay_source
    qtbot.keyClick(win.focusWidget(), Qt.Key.Key_Up)
    assert win.state.overlay_source == variant


def test_marks_stay_under_the_mask_being_edited(editor: MainWindow) -> None:
    editor.editing.manager.set_annotating(True)
    canvas = editor.viewer.canvas
    mask, marks = canvas.layer("mask"), canvas.layer("marks")
    assert mask is not None and marks is not None
    assert canvas.layer("overlay").zValue() < marks.zValue() < mask.zValue()
