"""Model menu: import, published downloads (local server), the compare model set, ONNX export."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot

from app.common.checkpoints import import_destination, model_stem, summarize
from app.common.render import label_image, qimage_to_rgb
from app.shell.main_window import MainWindow
from app.state.display import VARIANTS
from core.checkpoints.download import PUBLISHED, PublishedModel
from core.checkpoints.reference import expected_keys
from core.models import FCN, FCNConfig
from tests.app.conftest import Screenshot, make_checkpoint
from tests.core.checkpoints.test_caffe import random_fcn, write_caffemodel

TIMEOUT = 60000


@pytest.fixture(autouse=True)
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Imports and downloads go to a throwaway cache."""
    monkeypatch.setenv("FCN_STUDIO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


def _answer_open(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *_a, **_k: (str(path), "")))


# --------------------------------------------------------------------------- import


def test_importing_a_caffemodel_from_the_menu_loads_it(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src = write_caffemodel(tmp_path / "fcn16s-heavy-pascal.caffemodel", random_fcn(), "16s")
    _answer_open(monkeypatch, src)
    with qtbot.waitSignal(window.controller.modelLoaded, timeout=TIMEOUT) as loaded:
        window.actions.import_model.trigger()
    model = loaded.args[0]
    assert model.path == cache / "fcn16s-heavy-pascal.safetensors"
    assert model.info.name == "fcn16s-heavy-pascal" and model.info.num_classes == 21
    assert model.info.training["variant"] == "16s"
    assert window.status.model_label.text().startswith("Model: fcn16s-heavy-pascal · 21 classes")
    assert any("Imported" in n.text and "FCN-16s" in n.text
               for n in window.notifications.messages)
    assert not window.status.is_shown("task")
    # it is in the model library (Model > Library)
    window.models_ui._fill_library_menu()
    texts = [a.text() for a in window.actions.library_menu.actions()]
    assert any(t.startswith("fcn16s-heavy-pascal · 21 classes · FCN-16s") for t in texts)


def test_imports_replace_their_own_conversion_but_not_another_models(
    tmp_path: Path, cache: Path
) -> None:
    from core.checkpoints.convert import convert

    assert model_stem(Path("a/fcn8s-atonce_from_caffe.pth.tar")) == "fcn8s-atonce_from_caffe"
    src = write_caffemodel(tmp_path / "fcn32s.caffemodel", random_fcn(), "32s")
    first = import_destination(src, cache)
    assert first == cache / "fcn32s.safetensors"
    convert(src, first)
    assert import_destination(src, cache) == first  # re-import: same file
    other = make_checkpoint(tmp_path / "fcn32s.safetensors", seed=5)
    assert import_destination(other, cache) == cache / "fcn32s-2.safetensors"
    assert import_destination(first, cache) == first  # already the library's checkpoint


class _Code:
    """Pickles as a call of ``print``: loading it would run code."""

    def __reduce__(self) -> tuple:
        return (print, ("this must never run",))


def test_bad_model_files_give_messages_and_the_app_lives_on(
    qtbot: QtBot, loaded_window: MainWindow, tmp_path: Path
) -> None:
    win = loaded_window
    garbage = tmp_path / "garbage.caffemodel"
    garbage.write_bytes(b"\x0a\xff\xff\xff\x0fnot a caffe model")
    missing = write_caffemodel(tmp_path / "missing.caffemodel", random_fcn(), "32s", drop=["fc7"])
    wide = np.zeros((48, 16, 3, 3), np.float32)  # conv1_2 expects (4, 4, 3, 3) at width 1/16
    shape = write_caffemodel(tmp_path / "shape.caffemodel", random_fcn(), "32s",
                             replace={"conv1_2.weight": wide})
    classes = write_caffemodel(tmp_path / "classes.caffemodel", random_fcn(), "32s",
                               replace={"upscore.weight": np.zeros((5, 5, 64, 64), np.float32)})
    code = tmp_path / "code.pth"
    torch.save({"fc6.weight": torch.zeros(2), "evil": _Code()}, code)
    expected = {
        garbage: "not a valid Caffe model (truncated or corrupt)",
        missing: "missing layers ['fc7.weight', 'fc7.bias']",
        shape: "layer conv1_2.weight has shape (48, 16, 3, 3)",
        classes: "5 classes, but score_fr has 21 classes",
        code: "refused: loading it would run code",
    }
    for path, words in expected.items():
        with qtbot.waitSignal(win.models_ui.tasks.failed, timeout=TIMEOUT) as failed:
            win.models_ui.import_model(path)
        message = failed.args[2]
        assert message.startswith(f"Import of {path.name} failed: {path}"), message
        assert words in message, message
        note = win.notifications.last("error")
        assert note is not None and note.text == message
    assert not (tmp_path / "cache" / "models" / "missing.safetensors").exists()
    assert win.isVisible() and win.controller.model.info.name == "tiny test model"
    assert win.docks["messages"].isVisible()
    with qtbot.waitSignal(win.controller.resultReady, timeout=TIMEOUT):
        win.actions.next_image.trigger()


# --------------------------------------------------------------------------- downloads


@dataclass
class Site:
    """What the local server serves, what it saw, and an optional stall."""

    files: dict[str, bytes] = field(default_factory=dict)
    ranges: list[str | None] = field(default_factory=list)
    stall_at: int | None = None  # send this many bytes, then wait for ``gate``
    gate: threading.Event = field(default_factory=threading.Event)
    url: str = ""


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            rng = self.headers.get("Range")
            site.ranges.append(rng)
            data = site.files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            match = re.fullmatch(r"bytes=(\d+)-", rng or "")
            start = int(match.group(1)) if match else 0
            self.send_response(206 if match else 200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data) - start))
            if match:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            body = data[start:]
            stall, site.stall_at = site.stall_at, None
            if stall is not None:
                self.wfile.write(body[:stall])
                self.wfile.flush()
                site.gate.wait(30)
                body = body[stall:]
            try:
                self.wfile.write(body)
            except OSError:  # the client went away (cancelled)
                pass

    return Handler


@pytest.fixture
def site() -> Iterator[Site]:
    """A local HTTP server (the only host FCN_STUDIO_OFFLINE allows)."""
    site = Site()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield site
    site.gate.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def published(site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PublishedModel:
    """A tiny pytorch-fcn style FCN-32s (about 9 MB) in the registry, served by ``site``."""
    torch.manual_seed(0)
    model = FCN(FCNConfig(num_classes=21, width=0.0625))
    state = {k: v for k, v in model.state_dict().items() if k in expected_keys("32s")}
    torch.save(state, tmp_path / "tiny.pth")
    data = (tmp_path / "tiny.pth").read_bytes()
    site.files["/tiny-fcn32s_from_caffe.pth"] = data
    entry = PublishedModel("tiny-fcn32s", f"{site.url}/tiny-fcn32s_from_caffe.pth",
                           "tiny-fcn32s_from_caffe.pth", hashlib.md5(data).hexdigest(),
                           len(data), "32s", origin="pytorch-fcn")
    monkeypatch.setitem(PUBLISHED, entry.name, entry)
    return entry


def test_download_dialog_downloads_verifies_converts_and_lists_it(
    qtbot: QtBot, window: MainWindow, published: PublishedModel, cache: Path, site: Site,
    screenshot: Screenshot,
) -> None:
    window.actions.download_models.trigger()
    dialog = window.models_ui.download_dialog
    assert dialog is not None and dialog.isVisible() and not dialog.isModal()
    assert "voc-fcn8s" in dialog.names() and "tiny-fcn32s" in dialog.names()
    assert dialog.status("tiny-fcn32s") == "not downloaded"
    row = dialog.names().index("voc-fcn8s")
    assert dialog.table.item(row, 4).text() == "not published"
    dialog.select("tiny-fcn32s")
    with qtbot.waitSignal(window.models_ui.tasks.finished, timeout=TIMEOUT) as done:
        dialog.download_button.click()
    checkpoint = cache / "tiny-fcn32s_from_caffe.safetensors"
    assert done.args[1].path == checkpoint
    assert summarize(checkpoint).name == "tiny-fcn32s"
    assert dialog.status("tiny-fcn32s") == "ready (converted)"
    assert dialog.progress.value() == dialog.progress.maximum()
    assert str(checkpoint) in dialog.message.text()
    assert site.ranges == [None]
    assert any(s.path == checkpoint for s in window.models_ui.library())
    qtbot.wait(50)
    screenshot(dialog, "download_dialog")
    with qtbot.waitSignal(window.controller.modelLoaded, timeout=TIMEOUT) as loaded:
        dialog.load_button.click()
    assert loaded.args[0].info.name == "tiny-fcn32s"


def test_a_cancelled_download_keeps_its_part_and_resumes(
    qtbot: QtBot, window: MainWindow, published: PublishedModel, cache: Path, site: Site
) -> None:
    dialog = window.models_ui.show_download_dialog()
    dialog.select(published.name)
    site.stall_at = 3 << 19  # 1.5 MiB, then wait: the worker is mid-way (1 MiB chunks)
    dialog.download()
    part = cache / (published.filename + ".part")
    qtbot.waitUntil(lambda: part.is_file() and part.stat().st_size >= 1 << 20, timeout=TIMEOUT)
    assert dialog.cancel_button.isEnabled() and not dialog.download_button.isEnabled()
    with qtbot.waitSignal(window.models_ui.tasks.cancelled, timeout=TIMEOUT):
        dialog.cancel_button.click()
        site.gate.set()
    kept = part.stat().st_size
    assert 1 << 20 <= kept < published.size
    assert not (cache / published.filename).exists()
    assert dialog.status(published.name).startswith("partial:")
    assert "Cancelled" in dialog.message.text()
    with qtbot.waitSignal(window.models_ui.tasks.finished, timeout=TIMEOUT):
        dialog.download()
    assert site.ranges == [None, f"bytes={kept}-"]
    assert not part.exists() and (cache / published.filename).stat().st_size == published.size
    assert dialog.status(published.name) == "ready (converted)"


def test_offline_download_names_the_url_and_where_to_put_the_file(
    qtbot: QtBot, window: MainWindow, cache: Path, monkeypatch: pytest.MonkeyPatch,
    screenshot: Screenshot,
) -> None:
    monkeypatch.setenv("FCN_STUDIO_OFFLINE", "1")
    dialog = window.models_ui.show_download_dialog()
    with qtbot.waitSignal(window.models_ui.tasks.failed, timeout=TIMEOUT) as failed:
        dialog.download("voc-fcn8s")
    message = failed.args[2]
    assert PUBLISHED["voc-fcn8s"].url in message
    assert str(cache / "fcn8s-heavy-pascal.caffemodel") in message
    assert "Offline" in dialog.message.text() and "place it at" in dialog.message.text()
    assert window.notifications.last("error").text == message
    assert dialog.download_button.isEnabled()
    qtbot.wait(50)  # let the layout take the wrapped message
    screenshot(dialog, "download_dialog_offline")


# --------------------------------------------------------------------------- model set


def _named_checkpoint(folder: Path, name: str, seed: int) -> Path:
    from core.checkpoints.convert import convert

    raw = make_checkpoint(folder / f"{name}-raw.safetensors", seed=seed)
    convert(raw, folder / f"{name}.safetensors", name=name)
    return folder / f"{name}.safetensors"


def test_model_set_shows_each_models_output_in_its_pane(
    qtbot: QtBot, loaded_window: MainWindow, tmp_path: Path, screenshot: Screenshot
) -> None:
    win = loaded_window
    names = {"32s": "fcn32s-test", "16s": "fcn16s-test", "8s": "fcn8s-test"}
    paths = {v: _named_checkpoint(tmp_path, n, seed) for seed, (v, n) in
             enumerate(names.items(), start=11)}
    ids = {v: summarize(p).model_id for v, p in paths.items()}
    assert len(set(ids.values())) == 3 and win.state.model_id not in ids.values()
    win.actions.model_set.trigger()
    dialog = win.models_ui.set_dialog
    assert dialog is not None
    assert all(c.currentText().startswith("Current model (tiny test model)")
               for c in dialog.combos.values())
    for variant, path in paths.items():
        assert dialog.select(variant, path)
    dialog.accept()
    doc = win.state.document
    qtbot.waitUntil(lambda: all(doc.prediction(i) is not None for i in ids.values()),
                    timeout=TIMEOUT)
    win.tabs.setCurrentWidget(win.compare)
    win.compare.refresh_now()
    shown = {}
    for variant in VARIANTS:
        pane = win.compare.panes[variant]
        assert pane.title_text() == f"FCN-{variant} · {names[variant]} ({variant} output)"
        colors = summarize(paths[variant]).colors
        want = label_image(doc.output(ids[variant], variant).labels, colors, {0}).image
        shown[variant] = qimage_to_rgb(pane.canvas.overlay_layer.buffer.image)
        assert np.array_equal(shown[variant], qimage_to_rgb(want)), variant
        own = doc.output(win.state.model_id, variant).labels
        assert not np.array_equal(doc.output(ids[variant], variant).labels, own)
    assert not np.array_equal(shown["32s"], shown["16s"])
    assert not np.array_equal(shown["16s"], shown["8s"])
    assert "models differ on" in win.compare.panes["disagreement"].caption.text()
    assert win.compare.panes["disagreement"].canvas.overlay_layer.buffer is not None
    assert "mean IU" in win.compare.panes["16s"].caption.text()
    stats = win.stats
    assert stats.column_label("16s") == "16s\nfcn16s-test"
    assert "fcn8s-test" in stats.note.text()
    set_stats = win.models_ui.set_runner
    assert not set_stats.busy
    assert float(stats.value("mean_iu", "16s")) >= 0.0
    qtbot.wait(50)  # let the layout take the new (wrapped) titles
    screenshot(win, "compare_model_set")
    grid = win.exporter.grid(tmp_path / "grid.png")
    assert grid is not None and grid.is_file()
    # cached per (image, model, variant): back to this image runs nothing
    with qtbot.waitSignal(win.models_ui.set_runner.resultReady, timeout=TIMEOUT):
        win.actions.next_image.trigger()
    win.actions.prev_image.trigger()
    assert win.state.document is doc
    assert not [j for j in set_stats.pending() if j.doc is doc or not j.cancel.is_set()]
    # back to the current model for all three
    win.models_ui.set_model_set({})
    win.compare.refresh_now()
    assert win.compare.panes["8s"].title_text() == "FCN-8s · tiny test model (8s output)"
    assert stats.column_label("8s") == "8s"


def test_the_papers_three_imported_nets_fill_the_model_set(
    qtbot: QtBot, loaded_window: MainWindow, tmp_path: Path, screenshot: Screenshot
) -> None:
    win = loaded_window
    for seed, variant in enumerate(VARIANTS):
        src = write_caffemodel(tmp_path / f"fcn{variant}-heavy-pascal.caffemodel",
                               random_fcn(seed=seed), variant)
        with qtbot.waitSignal(win.controller.modelLoaded, timeout=TIMEOUT):
            win.models_ui.import_model(src)
    assert win.state.model_info.name == "fcn8s-heavy-pascal"  # the last import is loaded
    dialog = win.models_ui.show_model_set_dialog()
    dialog.paper_button.click()
    chosen = dialog.choice()
    assert {v: m.name for v, m in chosen.items()} == {
        v: f"fcn{v}-heavy-pascal" for v in VARIANTS}
    dialog.accept()
    doc = win.state.document
    qtbot.waitUntil(lambda: all(doc.prediction(m.model_id) is not None
                                for m in chosen.values()), timeout=TIMEOUT)
    assert chosen["8s"].model_id == win.state.model_id  # run by the window's own controller
    win.tabs.setCurrentWidget(win.compare)
    win.compare.refresh_now()
    titles = [win.compare.panes[v].title_text() for v in VARIANTS]
    assert titles == [f"FCN-{v} · fcn{v}-heavy-pascal ({v} output)" for v in VARIANTS]
    assert win.stats.column_label("32s") == "32s\nfcn32s-heavy-pascal"
    qtbot.wait(50)
    screenshot(win, "compare_paper_models")


def test_model_set_dialog_without_converted_nets_says_what_to_do(
    qtbot: QtBot, loaded_window: MainWindow
) -> None:
    dialog = loaded_window.models_ui.show_model_set_dialog()
    assert not dialog.use_paper_models()
    assert "import or download the reference nets first" in dialog.problem.text()
    assert dialog.select("16s", __file__) is False  # not a checkpoint
    assert "not a safetensors file" in dialog.problem.text()
    dialog.reject()
    assert not loaded_window.models_ui.model_set.active


# --------------------------------------------------------------------------- ONNX


def test_export_onnx_writes_a_model_onnxruntime_runs(
    qtbot: QtBot, loaded_window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "exported" / "tiny"
    out.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *_a, **_k: (str(out), "")))
    with qtbot.waitSignal(loaded_window.models_ui.tasks.finished, timeout=TIMEOUT) as done:
        loaded_window.actions.export_onnx.trigger()
    path = out.with_suffix(".onnx")
    assert done.args[1].path == path and path.is_file()
    note = loaded_window.notifications.last()
    assert note.level == "info" and str(path) in note.text
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["score_32s", "score_16s", "score_8s"]
    scores = session.run(["score_8s"], {"input": np.zeros((1, 3, 40, 56), np.float32)})[0]
    assert scores.shape == (1, 4, 40, 56)
