"""ModelState: the one owner of what is known about the model in use.

The loaded model (metadata, id, device, checkpoint), the checkpoint asked for, the inference
runtime and its notes, and the model set of the compare panes. The inference controller
writes it; the views, panels and features read it and subscribe to its signals.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.state.model_set import ModelSet


@dataclass(frozen=True)
class LoadedModel:
    """What the GUI needs to know about the model the worker holds."""

    info: Any
    device: str
    path: Path
    model_id: str


class ModelState(QObject):
    """The model in use (and the one being loaded), its runtime and the model set.

    Attributes:
        loaded: The loaded model (None: none yet, or only metadata set by :meth:`set_info`).
        info: The current model's metadata (``core.checkpoints.checkpoint.ModelInfo``) or None.
        model_id: The id its predictions are stored under, or None.
        path: The checkpoint asked for last (None: the default model).
        runtime: The inference backend in use ('' until the model's first prediction).
        runtime_notes: Why speed-ups were left out or fell back.
        model_set: Which checkpoint each compare pane shows.

    Signals:
        loading(str): a load was asked for (the checkpoint path, '' for the default model).
        changed(object): the model in use changed (a :class:`LoadedModel`, or None).
        failed(str): a load failed (user-facing); the previous model stays.
        runtimeChanged(str, object): the runtime and its notes (a tuple) changed.
    """

    loading = Signal(str)
    changed = Signal(object)
    failed = Signal(str)
    runtimeChanged = Signal(str, object)

    def __init__(self, parent: QObject | None = None) -> None:
        """Start with no model and an empty model set."""
        super().__init__(parent)
        self.loaded: LoadedModel | None = None
        self.info: Any | None = None
        self.model_id: str | None = None
        self.path: Path | None = None
        self.runtime: str = ""
        self.runtime_notes: tuple[str, ...] = ()
        self.model_set = ModelSet(self)

    # ------------------------------------------------------------------ writers
    def set_loading(self, path: str | Path | None) -> None:
        """A load of ``path`` (None: the default model) was asked for."""
        self.path = Path(path) if path is not None else None
        self.loading.emit(str(path or ""))

    def set_loaded(self, loaded: LoadedModel) -> None:
        """The worker holds ``loaded`` now; its runtime is known after its first prediction."""
        self.loaded = loaded
        self.runtime, self.runtime_notes = "", ()
        self._set(loaded.info, loaded.model_id, loaded)

    def set_info(self, info: Any | None, model_id: str | None) -> None:
        """Set the current model's metadata and id without a loaded model (views, tests)."""
        self._set(info, model_id, self.loaded)

    def set_failed(self, message: str) -> None:
        """Loading failed; the model in use stays."""
        self.failed.emit(message)

    def set_runtime(self, runtime: str, notes: tuple[str, ...] = ()) -> bool:
        """Record the backend a prediction ran on; True (and a signal) when it changed."""
        notes = tuple(notes)
        if not runtime or (runtime, notes) == (self.runtime, self.runtime_notes):
            return False
        self.runtime, self.runtime_notes = runtime, notes
        self.runtimeChanged.emit(runtime, notes)
        return True

    def _set(self, info: Any | None, model_id: str | None, loaded: LoadedModel | None) -> None:
        self.info, self.model_id = info, model_id
        self.changed.emit(loaded)

    # ------------------------------------------------------------------ readers
    @property
    def checkpoint(self) -> Path | None:
        """The loaded model's checkpoint file, if any."""
        return self.loaded.path if self.loaded is not None else None

    @property
    def device(self) -> str:
        """The device the loaded model runs on ('' without one)."""
        return self.loaded.device if self.loaded is not None else ""

    def class_names(self) -> list[str]:
        """The current model's class names (empty without a model)."""
        return list(self.info.class_names) if self.info is not None else []

    def colors(self) -> list[tuple[int, int, int]]:
        """The current model's class colors (empty without a model)."""
        return [tuple(c) for c in self.info.colors] if self.info is not None else []

    def describe(self) -> str:
        """E.g. "tiny test model (tiny.safetensors) on cpu", or "none loaded"."""
        m = self.loaded
        if m is None:
            return "none loaded"
        return f"{m.info.name or m.path.stem} ({m.path.name}) on {m.device}"
