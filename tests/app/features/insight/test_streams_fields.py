"""The Insight dock on the real window: skip streams that sum to the output at a clicked
pixel, receptive field rectangles on hover, effective fields, fc as conv, all computed in
the insight thread."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.shell.main_window import MainWindow
from tests.app.conftest import Screenshot, open_window, vpos, write_samples
from tests.app.features.insight.helpers import (
    ThreadSpy,
    core_model,
    insight,
    model_logits,
    wait_shown,
)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> ThreadSpy:
    return ThreadSpy(monkeypatch)


def _tiny_model() -> Path:
    return Path(os.environ["FCN_STUDIO_MODEL"])


def test_streams_sum_to_the_output_at_a_clicked_pixel(
        qtbot: QtBot, spy: ThreadSpy, editor: MainWindow, screenshot: Screenshot) -> None:
    # behind the Statistics tab the dock does nothing
    assert not editor.insight.session.active and not editor.insight.session.controller.pending()
    assert not spy.calls
    ui = insight(editor, "streams")
    streams = wait_shown(qtbot, ui, "streams")
    assert streams.thread == "fcn-insight"
    tab = ui.dock.streams
    doc = editor.state.document
    assert streams.scale.size == (doc.height, doc.width) and tab.note.text() == ""
    for v, r in streams.residuals.items():
        assert r < 1e-4, (v, r)
    assert "max |Σ terms − output|" in tab.summary.text()

    x, y = 50, 40
    pixel = wait_shown(qtbot, ui, "pixel", lambda: qtbot.mouseClick(
        editor.viewer.canvas.viewport(), Qt.MouseButton.LeftButton, pos=vpos(editor, x, y)))
    assert (pixel.x, pixel.y) == (x, y) and pixel.thread == "fcn-insight"
    assert ui.session.probe == (x, y)
    assert f"Pixel ({x}, {y})" in tab.pixel_label.text()

    shown = tab.table_values()  # the numbers the view shows, as text
    logits = model_logits(_tiny_model(), doc.image)
    for v, streams_of in (("16s", ("score_fr", "score_pool4")),
                          ("8s", ("score_fr", "score_pool4", "score_pool3"))):
        col = shown[v]
        terms = np.sum([col[s] for s in streams_of], axis=0)
        expected = logits[v][:, y, x]
        np.testing.assert_allclose(col["sum"], terms, atol=3e-4)  # 4 decimals each
        np.testing.assert_allclose(col["output"], col["sum"], atol=3e-4)
        np.testing.assert_allclose(col["output"], expected, atol=2e-3, rtol=1e-4)
    assert "16s" in tab.residual_label.text() and "8s" in tab.residual_label.text()
    assert tab.chart.pixel is pixel and tab.chart.height() > 0

    # the maps: the terms of the class shown add up to its output map and the model's
    maps = tab.maps
    c = maps.cls
    for v in ("16s", "8s"):
        total = sum(m[y, x] for m in maps.terms[v].values())
        assert total == pytest.approx(maps.outputs[v][y, x], abs=1e-4)
        assert maps.outputs[v][y, x] == pytest.approx(logits[v][c, y, x], abs=1e-3, rel=1e-4)

    # another class: its maps come from the cached decomposition
    other = 2
    maps2 = wait_shown(qtbot, ui, "class_maps", lambda: (
        tab.class_box.setCurrentIndex(other), tab.classChosen.emit(other)))
    assert maps2.cls == other and tab.maps is maps2
    np.testing.assert_allclose(maps2.outputs["8s"], logits["8s"][other], atol=1e-3, rtol=1e-4)

    # a tile on the viewer, in the insight layer between the overlay and the marks
    qtbot.mouseClick(tab.grid.tiles["term:score_pool4"].picture, Qt.MouseButton.LeftButton)
    layer = ui.session.layers.map_layer
    assert layer.isVisible() and "score_pool4" in layer.what
    assert 10 < layer.zValue() < 15
    screenshot(editor, "insight_streams")
    spy.assert_off_the_gui_thread("trunk_features", "decompose")


def test_hovering_draws_each_variants_receptive_field(
        qtbot: QtBot, spy: ThreadSpy, editor: MainWindow, screenshot: Screenshot) -> None:
    from core.insight.receptive import receptive_fields

    ui = insight(editor, "fields")
    session = ui.session
    qtbot.waitUntil(lambda: editor.models.model_id in session.geometry, timeout=60000)
    model, _ = core_model(_tiny_model())
    doc = editor.state.document
    viewport = editor.viewer.canvas.viewport()
    for x, y in ((60, 45), (40, 30), (75, 55)):
        qtbot.mouseMove(viewport, vpos(editor, x, y))
        qtbot.waitUntil(lambda x=x, y=y: bool(session.layers.fields_layer.rects())
                        and session.input.last_hover == (x, y)
                        and ui.dock.fields.legend["8s"].text().find(f"({x}, {y})") >= 0,
                        timeout=5000)
        rects = session.layers.fields_layer.rects()
        expected = receptive_fields(model, y, x, (doc.height, doc.width))
        assert set(rects) == {"FCN-32s", "FCN-16s", "FCN-8s"}
        for v, field in expected.items():
            assert rects[f"FCN-{v}"] == tuple(field.box), (v, x, y)
    assert 10 < session.layers.fields_layer.zValue() < 15
    # each stream of FCN-8s too: the skips see much less than fc7
    ui.dock.fields.streams_box.setChecked(True)
    rects = session.layers.fields_layer.rects()
    for stream in ("score_pool4", "score_pool3"):
        assert rects[f"8s: {stream}"] == tuple(expected["8s"].streams[stream])
    assert "score_pool3 52×52" in ui.dock.fields.stream_legend.text()
    screenshot(editor, "insight_fields_hover")
    ui.dock.fields.streams_box.setChecked(False)

    # the effective fields at the hovered pixel (Ctrl+Shift+F), off the GUI thread
    erf = wait_shown(qtbot, ui, "erf", lambda: qtbot.keyClick(
        viewport, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier
        | Qt.KeyboardModifier.ShiftModifier))
    assert (erf.x, erf.y) == (75, 55) and erf.thread == "fcn-insight"
    assert set(erf.maps) == {"32s", "16s", "8s"}
    x0, y0, x1, y1 = erf.window
    for v, m in erf.maps.items():
        assert m.shape == (y1 - y0, x1 - x0) and m.max() > 0
        bx0, by0, bx1, by1 = erf.boxes[v]
        inside = m[by0 - y0:by1 - y0, bx0 - x0:bx1 - x0].sum()
        assert inside == pytest.approx(m.sum(), rel=1e-6)  # no gradient outside the field
    qtbot.mouseClick(ui.dock.fields.grid.tiles["erf:8s"].picture, Qt.MouseButton.LeftButton)
    layer = session.layers.map_layer
    assert layer.isVisible() and "effective field" in layer.what
    screenshot(ui.dock, "insight_fields_dock")
    spy.assert_off_the_gui_thread("effective_receptive_fields")

    # hover rectangles only while the Receptive fields tab is in front
    ui.dock.show_tab("streams")
    qtbot.mouseMove(viewport, vpos(editor, 50, 40))
    qtbot.waitUntil(lambda: not session.layers.fields_layer.rects(), timeout=5000)


def test_erf_on_a_crop_equals_the_whole_images(tmp_path: Path) -> None:
    """The engine's crop (every field inside, aligned to 32) gives the whole image's
    gradients."""
    from app.features.insight.engine import InsightEngine
    from app.features.insight.results import Target
    from core.insight.features import image_tensor
    from core.insight.receptive import effective_receptive_fields

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (300, 420, 3), dtype=np.uint8)
    engine = InsightEngine()
    target = Target("noise", "m", _tiny_model(), "cpu", image)
    model, info = engine.model(target)
    for y, x in ((150, 300), (5, 410), (290, 3)):
        erf = engine.erf(target, y, x, lambda: None)
        full = effective_receptive_fields(model, image_tensor(image, info.preprocessing), y, x)
        x0, y0, x1, y1 = erf.window
        assert x0 % 32 == 0 and y0 % 32 == 0
        for v in full:
            np.testing.assert_allclose(erf.maps[v], full[v][y0:y1, x0:x1], rtol=1e-5,
                                       atol=1e-7 * float(full[v].max()))
            assert full[v].sum() == pytest.approx(full[v][y0:y1, x0:x1].sum(), rel=1e-5)


def test_fc_as_conv_on_a_larger_image(qtbot: QtBot, app_env: None, tmp_path: Path,
                                      spy: ThreadSpy, screenshot: Screenshot) -> None:
    write_samples(tmp_path / "big", n=1, size=(256, 320))
    win = open_window(qtbot, tmp_path / "big")
    try:
        ui = insight(win, "fc")
        result = wait_shown(qtbot, ui, "fc_conv")
        assert result.thread == "fcn-insight"
        rows, cols = result.dense.shape[-2:]
        assert (rows, cols) == (256 // 32 - 6, 320 // 32 - 6)  # pool5 cells minus 6
        assert result.slid.shape == result.dense.shape
        assert result.max_difference < 1e-4
        assert result.windows == ((256 - 224) // 32 + 1) * ((320 - 224) // 32 + 1)
        assert len(result.crops) == result.windows and result.crop_agreement is not None
        tab = ui.dock.fc
        assert "max |dense − classifier|" in tab.numbers.text()
        assert "zero padding" in tab.why.text()  # core.insight.fc_conv.WHY
        assert "0.0625 of VGG16's width" in tab.width_label.text()
        qtbot.mouseClick(tab.grid.tiles["dense"].picture, Qt.MouseButton.LeftButton)
        marks = ui.session.layers.marker_layer.rects()
        assert len(marks) == 1
        x0, y0, x1, y1 = next(iter(marks.values()))
        assert (x1 - x0, y1 - y0) == (224, 224) and x0 % 32 == 0 and y0 % 32 == 0
        screenshot(win, "insight_fc")
        spy.assert_off_the_gui_thread("compare_fc_conv")
    finally:
        win.controller.shutdown()


def test_small_and_large_images_say_what_was_computed(qtbot: QtBot, app_env: None,
                                                      tmp_path: Path) -> None:
    write_samples(tmp_path / "wide", n=1, size=(120, 1300))
    win = open_window(qtbot, tmp_path / "wide")
    try:
        ui = insight(win, "streams")
        streams = wait_shown(qtbot, ui, "streams")
        assert streams.scale.original == (120, 1300)
        assert streams.scale.size == (round(120 * 1024 / 1300), 1024)
        assert "1024×95 copy" in ui.dock.streams.note.text()
        ui.dock.show_tab("fc")
        fc = wait_shown(qtbot, ui, "fc_conv")
        assert fc.dense is None and "smaller than one 224×224 window" in ui.dock.fc.numbers.text()
    finally:
        win.controller.shutdown()
