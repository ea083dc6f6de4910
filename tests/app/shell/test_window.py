"""The main window end to end: start, segment, compare, heatmaps, cancel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF
from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from app.common.render import qimage_to_rgb
from app.shell.main_window import MainWindow
from app.state.display import VARIANTS
from tests.app.conftest import CLASS_NAMES, Screenshot


def test_window_shows_loading_then_the_first_result(
    qtbot: QtBot, window: MainWindow, samples: Path
) -> None:
    with qtbot.waitSignal(window.controller.modelLoading, timeout=5000):
        window.start([samples])
    assert window.status.model_label.text() == "Loading model…"
    assert window.file_list.count() == 3
    with qtbot.waitSignal(window.controller.resultReady, timeout=60000):
        pass
    assert window.status.model_label.text().startswith("Model: tiny test model")
    assert window.state.document.title == "sample_00.png"


def test_shown_mask_has_the_image_size_and_model_classes(
    loaded_window: MainWindow, screenshot: Screenshot
) -> None:
    win = loaded_window
    doc = win.state.document
    overlay = win.viewer.canvas.overlay_layer.buffer
    assert overlay is not None and overlay.size == (doc.width, doc.height)
    pred = win.state.prediction()
    assert set(pred.outputs) == set(VARIANTS)
    for out in pred.outputs.values():
        assert out.labels.shape == (doc.height, doc.width)
        assert out.labels.max() < len(CLASS_NAMES)
    # every opaque overlay pixel has the color of a (visible) class
    rgb = qimage_to_rgb(overlay.image).reshape(-1, 3)
    colors = {tuple(c) for c in win.state.colors()}
    assert {tuple(c) for c in np.unique(rgb, axis=0)} <= colors | {(0, 0, 0)}
    legend = [win.legend.topLevelItem(i).text(0) for i in range(win.legend.topLevelItemCount())]
    assert legend == CLASS_NAMES
    screenshot(win, "viewer")


def test_samples_with_masks_show_the_four_metrics(loaded_window: MainWindow) -> None:
    from core.metrics import confusion_matrix, segmentation_scores

    stats = loaded_window.stats
    doc = loaded_window.state.document
    for variant in VARIANTS:
        labels = loaded_window.state.output(variant).labels
        conf = confusion_matrix(doc.reference.copy(), labels.copy(), len(CLASS_NAMES))
        expected = segmentation_scores(conf)
        for key in ("pixel_acc", "mean_acc", "mean_iu", "fw_iu"):
            assert 0.0 <= float(stats.value(key, variant)) <= 1.0
            # the panel's numbers are the core's scores of this prediction (shown to 3 places)
            assert stats.value(key, variant) == f"{expected[key]:.3f}"
    assert "Metrics against" in stats.note.text()


def test_compare_panes_stay_in_sync(
    qtbot: QtBot, loaded_window: MainWindow, screenshot: Screenshot
) -> None:
    win = loaded_window
    win.tabs.setCurrentWidget(win.compare)
    qtbot.waitUntil(lambda: win.compare.panes["8s"].canvas.overlay_layer.buffer is not None)
    canvases = win.compare.canvases
    canvases[3].zoom_at(4.0, QPointF(40, 30))
    ref_zoom, ref_center = canvases[3].zoom, canvases[3].view_center()
    for canvas in canvases:
        assert canvas.zoom == pytest.approx(ref_zoom)
        center = canvas.view_center()
        assert abs(center.x() - ref_center.x()) <= 1 and abs(center.y() - ref_center.y()) <= 1
    canvases[0].fit()
    screenshot(win, "compare")
    assert "differ" in win.compare.panes["disagreement"].caption.text()
    assert "mean IU" in win.compare.panes["16s"].caption.text()


def test_contours_only_toggles_every_mask_pane(
    qtbot: QtBot, loaded_window: MainWindow, screenshot: Screenshot
) -> None:
    from app.common.render import contour_labels

    win = loaded_window
    win.tabs.setCurrentWidget(win.compare)
    pane = win.compare.panes["8s"]
    qtbot.waitUntil(lambda: pane.canvas.overlay_layer.buffer is not None)
    labels = win.state.output("8s").labels
    colors = win.state.colors()

    def drawn(buffer) -> np.ndarray:  # the overlay's opaque pixels
        img = buffer.image.convertToFormat(QImage.Format.Format_ARGB32)
        h, w = img.height(), img.width()
        raw = np.frombuffer(img.constBits(), np.uint8, img.bytesPerLine() * h)
        return raw.reshape(h, -1)[:, : 4 * w].reshape(h, w, 4)[..., 3] > 0  # BGRA

    filled = drawn(pane.canvas.overlay_layer.buffer)
    win.actions.contours.trigger()
    assert win.state.overlay_contours
    qtbot.waitUntil(lambda: not np.array_equal(drawn(pane.canvas.overlay_layer.buffer), filled))
    shown = drawn(pane.canvas.overlay_layer.buffer)
    hidden = sorted(win.state.hidden_classes)
    expected = contour_labels(labels)
    expected_shown = (expected != 255) & ~np.isin(expected, hidden)
    assert np.array_equal(shown, expected_shown)
    assert shown.sum() < filled.sum() / 2  # boundaries only
    win.viewer.refresh_now()
    assert np.array_equal(drawn(win.viewer.canvas.overlay_layer.buffer), expected_shown)
    assert len(colors) == len(win.legend.shares() or [])
    screenshot(win, "compare_contours")
    win.actions.contours.trigger()
    qtbot.waitUntil(lambda: np.array_equal(drawn(pane.canvas.overlay_layer.buffer), filled))


def test_heatmap_class_switch_changes_the_image(
    qtbot: QtBot, loaded_window: MainWindow, screenshot: Screenshot
) -> None:
    win = loaded_window
    win.tabs.setCurrentWidget(win.heatmaps)
    view = win.heatmaps
    win.state.set_heatmap(cls=1)
    view.refresh_now()
    first = qimage_to_rgb(view.canvas.overlay_layer.buffer.image)
    assert view.colorbar.title == "P(disc), FCN-8s"
    # choosing the class in the legend switches the heatmap
    item = win.legend.topLevelItem(3)
    win.legend.itemClicked.emit(item, 0)
    qtbot.waitUntil(lambda: view.colorbar.title == "P(wire), FCN-8s")
    second = qimage_to_rgb(view.canvas.overlay_layer.buffer.image)
    assert not np.array_equal(first, second)
    assert view.thumbs.count() == len(CLASS_NAMES) + 1
    win.state.set_heatmap(source="entropy", mode="alone")
    view.refresh_now()
    assert view.colorbar.title.startswith("Entropy")
    assert not view.canvas.image_layer.isVisible()
    screenshot(win, "heatmap_entropy_alone")
    win.state.set_heatmap(cls=1, mode="overlay")
    view.refresh_now()
    screenshot(win, "heatmaps")


def test_hover_reads_out_class_and_probability_per_variant(
    qtbot: QtBot, loaded_window: MainWindow
) -> None:
    canvas = loaded_window.viewer.canvas
    center = canvas.mapFromScene(QPointF(20.5, 20.5))
    qtbot.mouseMove(canvas.viewport(), center)
    qtbot.mouseMove(canvas.viewport(), center + QPoint(1, 0))
    text = loaded_window.status.hover_label.text()
    assert "x " in text and "32s:" in text and "16s:" in text and "8s:" in text
    assert "reference:" in text


def test_cancel_stops_a_running_segmentation(
    qtbot: QtBot, loaded_window: MainWindow, tmp_path: Path
) -> None:
    from core.data.imageio import write_image

    big = tmp_path / "big.png"
    write_image(big, np.random.default_rng(1).integers(0, 256, (2048, 2048, 3), dtype=np.uint8))
    win = loaded_window
    with qtbot.waitSignal(win.controller.progress, timeout=60000):
        win.open_paths([big])
    assert win.controller.busy and win.status.cancel_button.isVisible()
    with qtbot.waitSignal(win.controller.cancelled, timeout=30000):
        win.actions.cancel.trigger()
    assert win.state.prediction() is None
    assert "cancelled" in win.notifications.last().text
    qtbot.waitUntil(lambda: not win.status.bar.isVisible())
    # the app goes on: another image still segments
    small = tmp_path / "small.png"
    write_image(small, np.full((64, 80, 3), 90, np.uint8))
    with qtbot.waitSignal(win.controller.resultReady, timeout=60000):
        win.open_paths([small])


def test_going_back_to_an_image_is_instant(qtbot: QtBot, loaded_window: MainWindow) -> None:
    win = loaded_window
    first = win.state.document
    with qtbot.waitSignal(win.controller.resultReady, timeout=60000):
        win.actions.next_image.trigger()
    assert win.state.document.title == "sample_01.png"
    win.actions.prev_image.trigger()
    assert win.state.document is first
    assert win.state.prediction() is not None
    assert not win.controller.busy


def test_change_marks_without_a_previous_version_explain_why(
    qtbot: QtBot, loaded_window: MainWindow
) -> None:
    win = loaded_window
    win.tabs.setCurrentWidget(win.viewer)
    win.actions.show_disagreement.setChecked(True)
    win.viewer.refresh_now()
    disagreement = win.viewer.marks_layer.buffer
    win.actions.show_changes.setChecked(True)
    win.viewer.refresh_now()
    assert "no previous version" in win.viewer.caption.text()
    assert win.viewer.marks_layer.buffer is disagreement  # nothing to replace them with


def test_change_marks_follow_a_new_prediction_of_the_parent(loaded_window: MainWindow) -> None:
    import copy

    from app.canvas import overlays

    win = loaded_window
    doc, mid = win.state.document, win.state.model_id
    pred = doc.prediction(mid)
    doc.set_prediction("parent", copy.deepcopy(pred))
    assert not overlays.changed_pixels(doc, mid, "parent", "8s").any()
    again = copy.deepcopy(pred)  # the parent's prediction redone, different
    again.outputs["8s"].labels[:] = (again.outputs["8s"].labels + 1) % len(CLASS_NAMES)
    doc.set_prediction("parent", again)
    assert overlays.changed_pixels(doc, mid, "parent", "8s").all()


@pytest.mark.parametrize("backend", ["", "eager"])
def test_the_inference_runtime_is_shown_and_a_forced_eager_said(
    qtbot: QtBot, window: MainWindow, samples: Path, monkeypatch: pytest.MonkeyPatch,
    backend: str,
) -> None:
    monkeypatch.setenv("FCN_STUDIO_BACKEND", backend)
    with qtbot.waitSignal(window.controller.runtimeChanged, timeout=60000) as got:
        window.start([samples])
    runtime, notes = got.args
    html = window.model_panel.toHtml()
    assert "Runtime" in html and runtime.split(" ")[0] in html
    said = [m for m in window.notifications.messages if "Inference runs on" in m.text]
    assert len(said) == 1 and runtime in said[0].text
    if backend == "eager":
        assert runtime.startswith("streamed bands (fp32, NCHW)")
        assert any("forced by FCN_STUDIO_BACKEND" in n for n in notes)
        assert said[0].level == "warning" and "forced by FCN_STUDIO_BACKEND" in html
    else:
        assert runtime.startswith("streamed bands (fp32, channels_last)")
        assert said[0].level == "info"
    with qtbot.waitSignal(window.controller.resultReady, timeout=60000):
        window.actions.next_image.trigger()
    again = [m for m in window.notifications.messages if "Inference runs on" in m.text]
    assert len(again) == 1  # the same runtime is not announced twice
    with qtbot.waitSignal(window.controller.modelLoaded, timeout=60000):  # a reload
        window.load_model(None)
    assert "known after the next segmentation" in window.model_panel.toHtml()
    with qtbot.waitSignal(window.controller.runtimeChanged, timeout=60000):
        window.actions.run.trigger()
    assert "known after the next" not in window.model_panel.toHtml()
    again = [m for m in window.notifications.messages if "Inference runs on" in m.text]
    assert len(again) == 1  # nor after a reload that runs on the same


def test_an_unused_gpu_is_explained(
    qtbot: QtBot, window: MainWindow, samples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.inference.devices

    hint = "An NVIDIA GPU seems present, but this PyTorch is a CPU-only build"
    monkeypatch.setattr(core.inference.devices, "gpu_hint", lambda: hint)
    with qtbot.waitSignal(window.controller.deviceProblem, timeout=60000):
        window.start([samples])
    warning = window.notifications.last("warning")
    assert warning is not None and warning.text == hint


def test_keyboard_shortcuts_are_listed_from_the_menus(qtbot: QtBot, window: MainWindow) -> None:
    window.actions.shortcuts.trigger()
    dialog = window.shortcuts_dialog
    qtbot.waitExposed(dialog)
    rows = dict(dialog.rows())
    assert rows["Run Segmentation"].startswith("Ctrl+R") and rows["Contours Only"] == "C"
    assert rows["Brush"] == "B" and rows["Mark Changes from Previous Version"] == "Shift+X"
    assert rows["Segment All Images"] == "Ctrl+Shift+R" and "Ctrl+Wheel" in rows["Brush size"]
    every = {keys for _, keys in dialog.rows()}
    assert len(dialog.rows()) >= 30 and "F1" in every
    dialog.filter.setText("contour")
    assert dialog.rows() == [("Contours Only", "C")]
    dialog.filter.setText("")
    assert dialog.rows() == dialog.rows(visible_only=False)
