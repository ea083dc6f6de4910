"""ModelState owns the model facts; ViewerState reads them and announces every prediction."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
from pytestqt.qtbot import QtBot

from app.state.display import ViewerState
from app.state.document import ImageDocument
from app.state.model import LoadedModel, ModelState
from app.state.model_set import ModelSet

NAMES = ("background", "disc", "box")


def info(name: str = "m", model_id: str = "id-a") -> SimpleNamespace:
    """A stand-in for core.checkpoints.checkpoint.ModelInfo with what the state reads."""
    return SimpleNamespace(name=name, id=model_id, class_names=list(NAMES),
                           colors=[(0, 0, 0), (200, 0, 0), (0, 0, 200)], parent=None)


def loaded(model_id: str = "id-a", device: str = "cpu") -> LoadedModel:
    return LoadedModel(info("m", model_id), device, Path(f"/models/{model_id}.safetensors"),
                       model_id)


def test_a_load_sets_every_fact_and_resets_the_runtime(qtbot: QtBot) -> None:
    models = ModelState()
    assert models.loaded is None and models.info is None and models.device == ""
    assert models.describe() == "none loaded" and models.class_names() == []
    with qtbot.waitSignal(models.loading) as asked:
        models.set_loading("/models/x.safetensors")
    assert asked.args == ["/models/x.safetensors"] and models.path == Path("/models/x.safetensors")
    with qtbot.waitSignal(models.changed) as changed:
        models.set_loaded(loaded("id-a"))
    assert changed.args[0].model_id == "id-a"
    assert models.model_id == "id-a" and models.device == "cpu"
    assert models.checkpoint == Path("/models/id-a.safetensors")
    assert models.class_names() == list(NAMES) and models.colors()[1] == (200, 0, 0)
    assert models.describe() == "m (id-a.safetensors) on cpu"
    with qtbot.waitSignal(models.runtimeChanged) as said:
        assert models.set_runtime("torch (fp32)", ("no cuDNN",))
    assert said.args == ["torch (fp32)", ("no cuDNN",)]
    assert not models.set_runtime("torch (fp32)", ("no cuDNN",))  # unchanged: no signal
    assert not models.set_runtime("", ())  # unknown: nothing to say
    models.set_loaded(loaded("id-b"))
    assert (models.runtime, models.runtime_notes) == ("", ())  # known after a prediction
    assert models.model_id == "id-b"
    assert isinstance(models.model_set, ModelSet) and not models.model_set.active


def test_a_failed_load_keeps_the_model(qtbot: QtBot) -> None:
    models = ModelState()
    models.set_loaded(loaded("id-a"))
    with qtbot.waitSignal(models.failed) as failed:
        models.set_failed("bad file")
    assert failed.args == ["bad file"] and models.model_id == "id-a"


def test_the_display_state_reads_the_model_state(qtbot: QtBot) -> None:
    models = ModelState()
    state = ViewerState(models=models)
    assert state.models is models and state.model_id is None
    state.heatmap_class = 7
    with qtbot.waitSignal(state.modelChanged) as changed:
        models.set_loaded(loaded("id-a"))
    assert changed.args[0].id == "id-a"
    assert state.model_id == "id-a" and state.model_info is models.info
    assert state.class_names() == list(NAMES)
    assert state.hidden_classes == frozenset({0})  # background hidden by default
    assert state.heatmap_class == 1  # out of range for three classes
    state.set_model(None, None)  # through the model state
    assert models.info is None and models.model_id is None and state.class_names() == []


def test_predictions_are_announced_for_every_model_id(qtbot: QtBot) -> None:
    state = ViewerState()
    state.set_model(info(), "id-a")
    doc = ImageDocument(np.zeros((4, 5, 3), np.uint8))
    state.set_document(doc)
    announced: list[str] = []
    results: list[None] = []
    state.predictionChanged.connect(announced.append)
    state.resultChanged.connect(lambda: results.append(None))
    doc.set_prediction("id-other", SimpleNamespace(outputs={}))
    assert announced == ["id-other"] and results == []  # not the current model's
    doc.set_prediction("id-a", SimpleNamespace(outputs={}))
    assert announced == ["id-other", "id-a"] and len(results) == 1
    state.set_document(None)
    doc.set_prediction("id-a", SimpleNamespace(outputs={}))
    assert announced == ["id-other", "id-a"]  # no longer the current document


def test_a_legend_click_picks_the_class(qtbot: QtBot) -> None:
    state = ViewerState()
    state.set_model(info(), "id-a")
    with qtbot.waitSignal(state.classPicked) as picked:
        state.pick_class(2)
    assert picked.args == [2] and state.heatmap_class == 2
