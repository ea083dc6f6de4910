"""Model > Segment All Images…: batch inference over the file list in a worker thread."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.features.batch import BatchDialog, BatchSummary
from app.shell.main_window import MainWindow
from core.data.imageio import read_image, read_mask, write_image
from tests.app.conftest import Screenshot, make_scene

TIMEOUT = 30000


def _open(qtbot: QtBot, window: MainWindow, folder: Path) -> None:
    """Open ``folder`` and load the (tiny) default model."""
    with qtbot.waitSignal(window.controller.modelLoaded, timeout=TIMEOUT):
        window.start([folder])


def _dialog(window: MainWindow, out: Path, variants: tuple[str, ...] = ("8s",),
            overlays: bool = False, skip: bool = False) -> BatchDialog:
    dialog = window.batch.open_dialog()
    assert dialog is not None and dialog.isVisible()
    dialog.out_edit.setText(str(out))
    for v, box in dialog.variant_boxes.items():
        box.setChecked(v in variants)
    dialog.overlay_box.setChecked(overlays)
    dialog.skip_box.setChecked(skip)
    return dialog


def _run(qtbot: QtBot, window: MainWindow, dialog: BatchDialog) -> BatchSummary:
    with qtbot.waitSignal(window.batch.runner.finished, timeout=TIMEOUT) as blocker:
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    return blocker.args[0]


def _scenes(folder: Path, names: list[str], size: tuple[int, int] = (96, 128)) -> Path:
    for i, name in enumerate(names):
        write_image(folder / name, make_scene(10 + i, size)[0])
    return folder


def test_batch_writes_what_the_core_predicts(
    qtbot: QtBot, loaded_window: MainWindow, samples: Path, tiny_model: Path, tmp_path: Path
) -> None:
    win = loaded_window
    action = win.batch.action
    assert action.shortcut().toString() == "Ctrl+Shift+R"
    menu_actions = win.actions.autorun.associatedObjects()[0].actions()
    assert menu_actions[menu_actions.index(win.actions.autorun) + 1] is action
    dialog = win.batch.open_dialog()
    assert dialog.out_edit.text() == str(samples / "images" / "fcn-predictions")
    assert [v for v, b in dialog.variant_boxes.items() if b.isChecked()] == ["8s"]
    assert "3 images" in dialog.source_label.text()
    out = tmp_path / "preds"
    summary = _run(qtbot, win, _dialog(win, out))
    images = sorted((samples / "images").glob("*.png"))
    assert summary.written == [p.name for p in images] and not summary.failed
    assert dialog.overall_bar.text() == "3 / 3 images"
    note = win.notifications.last()
    assert "3 written, 0 skipped (already done), 0 failed" in note.text and note.level == "info"
    assert not win.status.is_shown("batch")  # the status-bar progress is gone once done
    assert sorted(p.name for p in out.iterdir()) == [f"{p.stem}_8s.png" for p in images]

    from core.cli import main as cli
    from core.inference import Segmenter

    cli_out = tmp_path / "cli"
    assert cli(["predict", str(samples / "images"), "--model", str(tiny_model),
                "--device", "cpu", "--out", str(cli_out)]) == 0
    segmenter = Segmenter.from_checkpoint(tiny_model, device="cpu")
    for path in images:
        mine = out / f"{path.stem}_8s.png"
        labels = segmenter.predict(read_image(path), variants=("8s",)).outputs["8s"].labels
        np.testing.assert_array_equal(read_mask(mine), labels)
        np.testing.assert_array_equal(read_mask(mine), read_mask(cli_out / mine.name))
        with Image.open(mine) as a, Image.open(cli_out / mine.name) as b:
            assert a.mode == b.mode == "P" and a.getpalette() == b.getpalette()


def test_cancel_mid_image_keeps_only_complete_files(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, screenshot: Screenshot
) -> None:
    folder = _scenes(tmp_path / "in", ["a_00.png", "a_01.png"])
    _scenes(folder, ["a_02.png"], size=(300, 300))  # 4 tiles of 256 px: cancel between them
    _scenes(folder, ["a_03.png"])
    _open(qtbot, window, folder)
    window.batch.tile_size = 256
    out = tmp_path / "out"
    dialog = _dialog(window, out)
    reached, go = threading.Event(), threading.Event()

    def hold(_job: int, _done: int, _total: int, name: str, fraction: float) -> None:
        if name == "a_02.png" and 0 < fraction < 1 and not reached.is_set():
            reached.set()  # runs in the worker thread: it waits there for the click
            go.wait(10)

    worker = window.batch.runner.worker_thread.ensure()
    worker.progress.connect(hold, Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(window.batch.runner.cancelled, timeout=TIMEOUT) as blocker:
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(reached.is_set, timeout=TIMEOUT)
        qtbot.waitUntil(lambda: dialog.file_label.text() == "a_02.png", timeout=TIMEOUT)
        assert not dialog.start_button.isEnabled() and dialog.cancel_button.isEnabled()
        assert dialog.overall_bar.text() == "2 / 4 images"
        assert "left" in dialog.eta_label.text()
        path = screenshot(dialog, "batch_dialog")
        assert path.is_file()
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
        go.set()
    summary: BatchSummary = blocker.args[0]
    assert summary.cancelled and summary.written == ["a_00.png", "a_01.png"]
    written = sorted(p.name for p in out.iterdir())
    assert written == ["a_00_8s.png", "a_01_8s.png"]  # no temporary or half-written file
    for name in written:
        image = read_image(folder / name.replace("_8s", ""))
        assert read_mask(out / name).shape == image.shape[:2]
    note = window.notifications.last()
    assert "cancelled after 2 of 4 images: 2 written" in note.text
    assert "cancelled" in dialog.status_label.text()
    assert dialog.start_button.isEnabled()


def test_a_corrupt_image_is_named_and_the_others_are_written(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    folder = _scenes(tmp_path / "in", ["good_00.png", "good_01.png"])
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not an image")
    _open(qtbot, window, folder)
    out = tmp_path / "out"
    summary = _run(qtbot, window, _dialog(window, out))
    assert summary.written == ["good_00.png", "good_01.png"]
    assert [name for name, _ in summary.failed] == ["broken.png"]
    assert sorted(p.name for p in out.iterdir()) == ["good_00_8s.png", "good_01_8s.png"]
    errors = [n.text for n in window.notifications.messages if n.level == "error"]
    assert any("broken.png" in text and "Cannot read image" in text for text in errors)
    note = window.notifications.last()
    assert note.level == "warning"
    assert "2 written, 0 skipped (already done), 1 failed: broken.png" in note.text


def test_skip_existing_skips_images_whose_outputs_exist(
    qtbot: QtBot, loaded_window: MainWindow, tmp_path: Path
) -> None:
    win, out = loaded_window, tmp_path / "out"
    first = _run(qtbot, win, _dialog(win, out, ("32s", "8s"), overlays=True))
    assert len(first.written) == 3 and first.files == 12
    names = {p.name for p in out.iterdir()}
    assert {"sample_00_32s.png", "sample_00_8s.png", "sample_00_8s_overlay.jpg"} <= names
    (out / "sample_01_32s_overlay.jpg").unlink()
    kept = (out / "sample_00_8s.png").stat().st_mtime_ns
    win.batch.dialog.close()
    dialog = win.batch.open_dialog()  # the options are remembered
    assert dialog.out_edit.text() == str(out) and dialog.overlay_box.isChecked()
    assert [v for v, b in dialog.variant_boxes.items() if b.isChecked()] == ["32s", "8s"]
    dialog.skip_box.setChecked(True)
    second = _run(qtbot, win, dialog)
    assert second.written == ["sample_01.png"]
    assert second.skipped == ["sample_00.png", "sample_02.png"]
    assert (out / "sample_01_32s_overlay.jpg").is_file()
    assert (out / "sample_00_8s.png").stat().st_mtime_ns == kept
    assert "1 written, 2 skipped (already done), 0 failed" in win.notifications.last().text


def test_no_model_or_no_images_gives_a_message(
    qtbot: QtBot, window: MainWindow, samples: Path, tmp_path: Path
) -> None:
    batch = window.batch
    batch.action.trigger()
    assert batch.dialog is None and not batch.runner.busy
    note = window.notifications.last()
    assert note.level == "warning" and "no model is loaded" in note.text
    with qtbot.waitSignal(window.controller.modelLoaded, timeout=TIMEOUT):
        window.load_model(None)
    batch.action.trigger()
    assert batch.dialog is None and "no images are open" in window.notifications.last().text
    window.open_paths([samples])
    dialog = _dialog(window, tmp_path / "out", variants=())
    assert not dialog.start_button.isEnabled()
    assert "at least one variant" in dialog.status_label.text()
    assert not batch.start() and not batch.runner.busy
    assert not (tmp_path / "out").exists()


def test_closing_the_window_stops_a_batch(
    qtbot: QtBot, loaded_window: MainWindow, tmp_path: Path
) -> None:
    win = loaded_window
    assert win.batch.start(_dialog(win, tmp_path / "out").options())
    assert win.batch.runner.busy
    win.close()
    assert not win.batch.runner.busy and not win.batch.runner.worker_thread.running


def test_a_refused_close_leaves_the_batch_running(
    qtbot: QtBot, loaded_window: MainWindow, tmp_path: Path
) -> None:
    win = loaded_window
    go = threading.Event()
    worker = win.batch.runner.worker_thread.ensure()
    worker.progress.connect(lambda *a: go.wait(5), Qt.ConnectionType.DirectConnection)
    assert win.batch.start(_dialog(win, tmp_path / "out").options())
    qtbot.waitUntil(lambda: win.status.is_shown("batch"), timeout=10000)
    assert win.status.text("batch") == "Batch: 0 / 3"  # progress while the dialog is closed
    assert "Batch:" not in win.statusBar().currentMessage()  # a label, not status messages
    win.editing.confirm_close = lambda: False  # "Cancel" at the unsaved-masks prompt
    win.close()
    assert win.isVisible() and win.batch.runner.busy  # the batch goes on
    go.set()
    with qtbot.waitSignal(win.batch.runner.finished, timeout=60000):
        pass
    assert len(list((tmp_path / "out").glob("*_8s.png"))) == 3
    del win.editing.confirm_close  # the teardown closes the window for real
