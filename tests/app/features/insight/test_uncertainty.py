"""Uncertainty on the real window: ranked "correct next" regions that move the view, "Next
image to correct" among the uncorrected images, and jobs cancelled when the image changes."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QRectF, Qt
from pytestqt.qtbot import QtBot

from app.shell.main_window import MainWindow
from tests.app.conftest import CLASS_NAMES, Screenshot, open_window, write_samples
from tests.app.features.insight.helpers import ThreadSpy, core_model, insight, wait_shown


def _core_scores(paths: list[Path]) -> dict[str, float]:
    """Each image's combined uncertainty score, computed with the core alone."""
    from core.data.imageio import read_image
    from core.insight.features import image_tensor
    from core.insight.regions import image_score
    from core.insight.uncertainty import UncertaintyConfig, estimate_uncertainty

    model, info = core_model(Path(os.environ["FCN_STUDIO_MODEL"]))
    out = {}
    for path in paths:
        x = image_tensor(read_image(path), info.preprocessing)
        u = estimate_uncertainty(model, x, config=UncertaintyConfig(variant="8s"))
        out[path.name] = image_score(u.combined())
    return out


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> ThreadSpy:
    return ThreadSpy(monkeypatch)


def test_correct_next_regions_are_ranked_and_move_the_view(
        qtbot: QtBot, spy: ThreadSpy, editor: MainWindow, screenshot: Screenshot) -> None:
    ui = insight(editor, "uncertainty")
    result = wait_shown(qtbot, ui, "uncertainty")
    assert result.thread == "fcn-insight"
    assert set(result.maps) == {"entropy", "mc_entropy", "mc_mutual_information", "flip",
                                "variants", "combined"}
    tab = ui.dock.uncertainty
    regions = tab.region_items()
    assert regions, "the random tiny model is unsure somewhere"
    masses = [r.mass for r in regions]
    assert masses == sorted(masses, reverse=True)
    layer = ui.session.layers.map_layer
    assert layer.isVisible() and "uncertainty" in layer.what
    canvas = editor.viewer.canvas
    for row in (min(1, len(regions) - 1), 0):
        region = regions[row]
        item = tab.regions.item(row)
        qtbot.mouseClick(tab.regions.viewport(), Qt.MouseButton.LeftButton,
                         pos=tab.regions.visualItemRect(item).center())
        # centred on the region (as far as the image's edges let the view go), zoomed so
        # that its box is in view
        visible = canvas.mapToScene(canvas.viewport().rect()).boundingRect()
        x0, y0, x1, y1 = region.box
        assert visible.contains(QRectF(x0, y0, x1 - x0, y1 - y0))
        center, scene = canvas.view_center(), canvas.sceneRect()
        for c, target, lo, hi, half in (
                (center.x(), region.center[0] + 0.5, scene.left(), scene.right(),
                 visible.width() / 2),
                (center.y(), region.center[1] + 0.5, scene.top(), scene.bottom(),
                 visible.height() / 2)):
            clamped = min(max(target, lo + half), hi - half) if 2 * half < hi - lo else c
            assert abs(c - clamped) < 2
        marks = ui.session.layers.marker_layer.rects()
        assert list(marks.values()) == [tuple(float(v) for v in region.box)]
    # another source: its own regions, instantly (no new job)
    jobs = len(spy.calls)
    tab.source_box.setCurrentIndex(tab.source_box.findData("entropy"))
    tab.source_box.activated.emit(tab.source_box.currentIndex())
    assert tab.source == "entropy" and len(spy.calls) == jobs
    assert tab.region_items() == result.regions["entropy"][:len(tab.region_items())]
    tab.source_box.setCurrentIndex(0)
    tab.source_box.activated.emit(0)
    screenshot(editor, "insight_uncertainty")
    spy.assert_off_the_gui_thread("trunk_features", "estimate_uncertainty")


def test_next_image_to_correct_opens_the_most_uncertain_uncorrected_one(
        qtbot: QtBot, app_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.annotation.project import Project

    folder = write_samples(tmp_path / "set", n=4)
    paths = sorted((folder / "images").glob("*.png"))
    expected = _core_scores(paths)
    win = open_window(qtbot, folder)
    spy = ThreadSpy(monkeypatch)
    try:
        ui = win.insight
        action = win.actions.next_to_correct
        assert action.shortcut().toString() == "Ctrl+Shift+U"
        assert action in win.host.menu("View").actions()
        first = win.navigator.current.image
        with qtbot.waitSignal(ui.ranker.finished, timeout=120000) as opened:
            action.trigger()
        others = {p.name: s for p, s in ((p, expected[p.name]) for p in paths) if p != first}
        best = max(others, key=others.get)
        assert opened.args[0].name == best
        assert win.navigator.current.image.name == best
        for path in paths:  # the scores the ranking used are the core's
            if path != first:
                key = (str(path.resolve()), win.models.model_id)
                assert ui.session.scores[key]["combined"] == pytest.approx(
                    expected[path.name], rel=1e-4, abs=1e-6)
        spy.assert_off_the_gui_thread("estimate_uncertainty")

        # the best one is corrected now: the next best uncorrected one comes next, with
        # no new work (the scores are kept per image and model)
        project = Project.create(tmp_path / "project", CLASS_NAMES)
        best_path = next(p for p in paths if p.name == best)
        (image_id,) = project.add_images([best_path])
        project.save_mask(image_id, np.zeros((96, 128), np.uint8), corrected=True)
        assert win.projects.open_folder(project.folder, CLASS_NAMES)
        calls = len(spy.calls)
        win.navigator.go(0)
        with qtbot.waitSignal(ui.ranker.finished, timeout=120000) as opened:
            action.trigger()
        rest = {n: s for n, s in expected.items()
                if n not in (best, paths[0].name)}
        assert opened.args[0].name == max(rest, key=rest.get)
        assert len(spy.calls) == calls  # every candidate was scored already
    finally:
        win.controller.shutdown()


def test_jobs_are_cancelled_when_the_image_changes(
        qtbot: QtBot, editor: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.features.insight.engine import InsightEngine

    release = threading.Event()
    entered = threading.Event()
    original = InsightEngine.streams

    def slow_streams(self: InsightEngine, *args: Any, **kwargs: Any) -> Any:
        entered.set()
        release.wait(30)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(InsightEngine, "streams", slow_streams)
    ui = insight(editor, "streams")
    controller = ui.session.controller
    qtbot.waitUntil(lambda: entered.is_set(), timeout=60000)
    job = controller.running
    assert job is not None and job.kind == "streams" and not job.cancel.is_set()
    first_key = job.target.image_key
    with qtbot.waitSignal(controller.cancelled, timeout=60000,
                          check_params_cb=lambda j: j is job):
        editor.navigator.next()  # another image
        assert job.cancel.is_set()
        release.set()
    monkeypatch.setattr(InsightEngine, "streams", original)
    # the new image's decomposition comes once its prediction is shown
    assert ui.session.target.image_key != first_key
    qtbot.waitUntil(lambda: ui.dock.streams.result is not None
                    and ui.session.cached("streams") is ui.dock.streams.result, timeout=60000)
    # nothing of the first image was kept or shown
    assert not [k for k in ui.session.results.keys() if k[1] == first_key]


def test_cancel_stops_the_work_until_it_is_asked_for_again(
        qtbot: QtBot, editor: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.features.insight.engine import InsightEngine

    release, entered = threading.Event(), threading.Event()
    original = InsightEngine.streams

    def slow_streams(self: InsightEngine, *args: Any, **kwargs: Any) -> Any:
        entered.set()
        release.wait(30)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(InsightEngine, "streams", slow_streams)
    ui = insight(editor, "streams")
    controller = ui.session.controller
    qtbot.waitUntil(lambda: entered.is_set(), timeout=60000)
    job = controller.running
    assert editor.status.is_shown("insight")  # the status bar's progress, with Cancel
    with qtbot.waitSignal(controller.cancelled, timeout=60000,
                          check_params_cb=lambda j: j is job):
        editor.status.cancel_button.click()
        assert job.cancel.is_set()
        release.set()
    monkeypatch.setattr(InsightEngine, "streams", original)
    qtbot.wait(100)
    assert not controller.pending() and ui.dock.streams.result is None
    assert not editor.status.is_shown("insight")
    assert ui.dock.status.text().startswith("Cancelled")
    # another tab and back: asked for again
    ui.dock.show_tab("fields")
    wait_shown(qtbot, ui, "streams", lambda: ui.dock.show_tab("streams"))
