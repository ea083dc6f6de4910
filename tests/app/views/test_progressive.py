"""Progressive display in the real window: the preview first, then the tiles as they land,
the part in view first, before the prediction finishes; cancel keeps what landed.

The tiny test model streams a 768 x 384 image in 32-row bands (24 tiles); the worker's tile
callback is held at a chosen tile so that the tests look at the window mid-prediction.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QThread
from pytestqt.qtbot import QtBot

from app.canvas.sources import LabelSource, dimmed
from app.common.render import color_lut
from app.shell.main_window import MainWindow
from app.state.document import ImageDocument
from app.workers import inference as inference_module
from tests.app.conftest import Screenshot, make_scene

SIZE = (768, 384)
BAND = 32


class GatedDocument(ImageDocument):
    """A document whose view region, read by the worker when the prediction proper starts
    (after the preview), is handed over only once ``start`` is set."""

    def __init__(self, image: np.ndarray) -> None:
        self.start = threading.Event()
        self._region = None
        super().__init__(image, Path("big.png"))

    @property  # type: ignore[override]
    def view_region(self):
        if QThread.currentThread() is not self.thread():
            self.start.wait(30)
        return self._region

    @view_region.setter
    def view_region(self, value) -> None:
        self._region = value


@pytest.fixture
def hold(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """``hold["at"] = n``: the worker waits after its n-th tile (sent at once) until
    ``hold["go"]`` is set."""
    state = {"at": 0, "go": threading.Event()}
    original = inference_module.Landing.__call__

    def held(self, prediction, region) -> None:
        original(self, prediction, region)
        if self.count == state["at"]:
            self.flush()
            state["go"].wait(30)

    monkeypatch.setattr(inference_module.Landing, "__call__", held)
    monkeypatch.setattr(inference_module, "PREVIEW_PIXELS", 100_000)
    yield state
    state["go"].set()


@pytest.fixture
def big(qtbot: QtBot, window: MainWindow) -> MainWindow:
    """The window with the tiny model loaded, streaming 32-row bands."""
    window.controller.tile_size = BAND
    with qtbot.waitSignal(window.controller.modelLoaded, timeout=60000):
        window.inference.load_model(None)
    return window


def show_zoomed(qtbot: QtBot, win: MainWindow, doc: ImageDocument) -> None:
    """Show ``doc`` in the Viewer zoomed in on its lower part."""
    win.state.set_document(doc)
    win.viewer.refresh_now()
    canvas = win.viewer.canvas
    canvas.set_zoom(2.0)
    canvas.centerOn(QPointF(190.0, 600.0))
    qtbot.wait(20)
    top, _, bottom, _ = doc.view_region
    assert SIZE[0] // 2 < top < 600 < bottom  # its lower half


def test_preview_first_then_tiles_in_view_first_before_the_end(
    qtbot: QtBot, big: MainWindow, hold: dict, screenshot: Screenshot
) -> None:
    from core.inference.results import Region
    from core.inference.tiling import tile_grid, tile_order

    win = big
    doc = GatedDocument(make_scene(3, SIZE)[0])
    show_zoomed(qtbot, win, doc)
    model_id = win.state.model_id
    events: list[object] = []
    doc.partialChanged.connect(lambda mid, boxes: events.append(boxes))
    finished: list[object] = []
    win.controller.resultReady.connect(lambda d, p: finished.append(p))
    hold["at"] = 4
    win.controller.run(doc)

    # 1. the preview, before any tile: upscaled, dimmed, hatched, with a caption
    qtbot.waitUntil(lambda: doc.partial(model_id) is not None, timeout=60000)
    win.viewer.refresh_now()
    part = doc.partial(model_id)
    assert events == [None] and part.preview is not None and part.prediction is None
    layer = win.viewer.canvas.overlay_layer
    assert isinstance(layer.source, LabelSource) and layer.source.partial is part
    assert win.viewer.pending_layer.boxes == [(0, 0, *SIZE)]
    assert win.viewer.progress_caption.text().startswith("Preview")
    lut = color_lut(win.state.colors(), win.state.hidden_classes)
    preview = part.preview["8s"].labels
    ys, xs = np.arange(SIZE[0]), np.arange(SIZE[1])
    iy, ix = part.preview_at(ys, xs)
    assert np.array_equal(layer.buffer.array, dimmed(lut)[preview[np.ix_(iy, ix)]])
    screenshot(win, "progressive_preview")

    # 2. the tiles: the ones in view first, drawn while the prediction goes on
    doc.start.set()
    qtbot.waitUntil(lambda: part.prediction is not None and len(part.regions) >= 4,
                    timeout=60000)
    assert not finished and doc.prediction(model_id) is None
    view = Region(*doc.view_region)
    order = tile_order(tile_grid(SIZE, BAND), view)
    landed = [Region(*box) for box in part.regions]
    assert landed == order[:len(landed)]
    assert landed[0].top < view.bottom and landed[0].bottom > view.top  # in view
    win.viewer.canvas.settle()
    labels = part.prediction["8s"].labels
    src = layer.source
    level = 0  # zoom 2: full resolution
    for box in part.regions:
        top, left, bottom, right = box
        for tx, ty in src.tiles_in(level, (left, top, right, bottom)):
            tile = src.cached(level, tx, ty)
            if tile is None:  # not in view
                continue
            x0, y0, x1, y1 = src.tile_rect(level, tx, ty)
            rows = slice(max(top, y0) - y0, min(bottom, y1) - y0)
            want = lut[labels[y0:y1, x0:x1]][rows]
            assert not tile.stale and np.array_equal(tile.array[rows], want)
    pending = win.viewer.pending_layer.boxes
    assert pending and all(not (b[0] < box[2] and b[2] > box[0])
                            for b in pending for box in part.regions)
    assert "% at full resolution so far" in win.viewer.progress_caption.text()
    screenshot(win, "progressive_tiles")

    # 3. the rest lands and the prediction is stored: the final layers, no hatching
    hold["go"].set()
    qtbot.waitUntil(lambda: bool(finished), timeout=60000)
    win.viewer.refresh_now()
    assert doc.partial(model_id) is None and doc.prediction(model_id) is finished[0]
    assert np.array_equal(finished[0]["8s"].labels, labels)
    assert win.viewer.pending_layer.boxes == [] and not win.viewer.progress_caption.isVisible()
    assert layer.source.partial is None
    all_landed = [Region(*b) for batch in events if batch for b in batch]
    assert all_landed == order  # every tile once, in the order computed


def test_cancel_mid_image_keeps_the_landed_tiles(
    qtbot: QtBot, big: MainWindow, hold: dict, screenshot: Screenshot
) -> None:
    win = big
    doc = GatedDocument(make_scene(4, SIZE)[0])
    doc.start.set()
    show_zoomed(qtbot, win, doc)
    model_id = win.state.model_id
    hold["at"] = 3
    win.controller.run(doc)
    qtbot.waitUntil(lambda: doc.partial(model_id) is not None
                    and len(doc.partial(model_id).regions) >= 3, timeout=60000)
    with qtbot.waitSignal(win.controller.cancelled, timeout=30000):
        win.actions.cancel.trigger()
        hold["go"].set()  # the worker goes on to its next band and stops there
    part = doc.partial(model_id)
    landed = list(part.regions)
    assert part.stopped and 3 <= len(landed) < SIZE[0] // BAND
    assert doc.prediction(model_id) is None
    qtbot.wait(100)
    assert part.regions == landed  # nothing lands after the cancel
    win.viewer.refresh_now()
    assert win.viewer.progress_caption.text().startswith("Stopped at")
    layer = win.viewer.canvas.overlay_layer
    assert layer.source.partial is part  # the landed tiles stay on screen
    shown = layer.buffer.array
    lut = color_lut(win.state.colors(), win.state.hidden_classes)
    labels = part.prediction["8s"].labels
    for top, _, bottom, _ in landed:
        assert np.array_equal(shown[top:bottom], lut[labels[top:bottom]])
    assert win.viewer.pending_layer.boxes  # the rest is still the preview
    screenshot(win, "progressive_cancelled")
    # running again segments it all
    with qtbot.waitSignal(win.controller.resultReady, timeout=60000):
        win.controller.run(doc)
    assert doc.partial(model_id) is None and doc.prediction(model_id) is not None
