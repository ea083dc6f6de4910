"""The inference controller and its worker thread, without a window."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from app.state.document import ImageDocument
from app.workers import inference as inference_module
from app.workers.inference_controller import InferenceController
from app.workers.support import describe_error


@pytest.fixture
def controller(qtbot: QtBot) -> Iterator[InferenceController]:
    ctl = InferenceController()
    yield ctl
    ctl.shutdown()


def _doc(seed: int = 0, size: tuple[int, int] = (48, 64)) -> ImageDocument:
    rng = np.random.default_rng(seed)
    return ImageDocument(rng.integers(0, 256, (*size, 3), dtype=np.uint8))


def test_load_then_predict_stores_the_result_in_the_document(
    qtbot: QtBot, controller: InferenceController, tiny_model: Path
) -> None:
    doc = _doc()
    controller.load_model(None)  # FCN_STUDIO_MODEL points at the tiny model
    with qtbot.waitSignal(controller.resultReady, timeout=30000) as blocker:
        controller.run(doc)  # queued behind the load
    assert blocker.args[0] is doc
    assert doc.prediction(controller.model.model_id) is blocker.args[1]
    assert controller.model.path == tiny_model
    assert not controller.busy


def test_a_new_request_replaces_the_pending_one(
    qtbot: QtBot, controller: InferenceController
) -> None:
    docs = [_doc(i) for i in range(3)]
    results: list[ImageDocument] = []
    controller.resultReady.connect(lambda d, _p: results.append(d))
    with qtbot.waitSignal(controller.modelLoaded, timeout=30000):
        controller.load_model(None)
    for doc in docs:
        controller.run(doc)
    qtbot.waitUntil(lambda: not controller.busy and docs[2] in results, timeout=30000)
    assert docs[1] not in results  # replaced while waiting


def test_predict_without_a_model_fails_cleanly(
    qtbot: QtBot, controller: InferenceController
) -> None:
    with qtbot.waitSignal(controller.failed, timeout=5000) as blocker:
        controller.run(_doc())
    assert "No model is loaded" in blocker.args[0]


def test_missing_default_model_message(
    qtbot: QtBot, controller: InferenceController, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("FCN_STUDIO_MODEL", str(tmp_path / "missing.safetensors"))
    with qtbot.waitSignal(controller.modelFailed, timeout=30000) as blocker:
        controller.load_model(None)
    assert "missing.safetensors" in blocker.args[0]


def test_cancel_before_the_worker_starts(qtbot: QtBot, controller: InferenceController) -> None:
    with qtbot.waitSignal(controller.modelLoaded, timeout=30000):
        controller.load_model(None)
    doc = _doc()
    with qtbot.waitSignal(controller.cancelled, timeout=30000) as blocker:
        controller.run(doc)
        assert controller.cancel()
    assert blocker.args[0] is doc
    assert not doc.predictions


def test_describe_error_for_out_of_memory() -> None:
    text = describe_error(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), "Failed")
    assert text.startswith("Failed: out of memory") and "CPU" in text
    assert describe_error(ValueError("bad"), "Oops") == "Oops: ValueError: bad"


def test_landing_sends_tiles_in_batches_at_most_every_fiftieth_of_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from core.inference import Region

    clock = [100.0]
    monkeypatch.setattr(inference_module.time, "monotonic", lambda: clock[0])
    sent: list[list[tuple[int, int, int, int]]] = []
    landing = inference_module.Landing(lambda _pred, boxes: sent.append(boxes), rate=20.0)
    landing("pred", Region(0, 0, 32, 10))
    assert sent == [[(0, 0, 32, 10)]]  # the first at once
    clock[0] += 0.01
    landing("pred", Region(32, 0, 64, 10))
    landing.poll()
    assert len(sent) == 1  # too soon: kept
    clock[0] += 0.05
    landing.poll()  # after the next band
    assert sent[-1] == [(32, 0, 64, 10)]
    landing("pred", Region(64, 0, 96, 10))
    landing.flush()  # the end (or a cancel)
    assert sent[-1] == [(64, 0, 96, 10)] and landing.count == 3


def test_a_large_image_lands_as_a_preview_then_tiles_then_the_result(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inference_module, "PREVIEW_PIXELS", 10_000)
    controller = InferenceController(tile_size=32)
    try:
        with qtbot.waitSignal(controller.modelLoaded, timeout=30000):
            controller.load_model(None)
        doc = _doc(3, (256, 96))
        model_id = controller.model.model_id
        seen: list[str] = []
        controller.previewReady.connect(lambda d, p: seen.append("preview"))
        controller.tilesLanded.connect(lambda d, boxes: seen.append(f"tiles {len(boxes)}"))
        with qtbot.waitSignal(controller.resultReady, timeout=30000):
            controller.run(doc)
        assert seen[0] == "preview" and all(s.startswith("tiles") for s in seen[1:])
        assert sum(int(s.split()[1]) for s in seen[1:]) == 256 // 32
        assert doc.partial(model_id) is None and doc.prediction(model_id) is not None
    finally:
        controller.shutdown()
