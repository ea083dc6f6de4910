"""InferenceService: the model and inference commands (load, device, run, cancel, auto-run).

The commands the Model menu, the features and the tests call, and the messages they leave
in the Messages dock. The facts (the model in use, its runtime) are the
:class:`~app.state.model.ModelState`'s; the work is the
:class:`~app.workers.inference_controller.InferenceController`'s.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.services.settings import Settings
from app.state.display import ViewerState
from app.state.document import ImageDocument
from app.state.model import LoadedModel, ModelState
from app.state.notifications import NotificationCenter
from app.workers.inference_controller import InferenceController


class InferenceService(QObject):
    """Model, device and inference commands over the controller and the model state.

    Attributes:
        controller: The inference controller (its signals: progress, results, busy).
        models: The model state it writes to.

    Signals:
        runRequested(object): Run was asked for this document (the model set runs its own
            checkpoints then).
        cancelRequested(): Cancel was asked for (every segmentation stops).
        autorunChanged(bool): auto-run on image change was turned on or off.
    """

    runRequested = Signal(object)
    cancelRequested = Signal()
    autorunChanged = Signal(bool)

    def __init__(
        self,
        state: ViewerState,
        settings: Settings,
        notifications: NotificationCenter,
        parent: QObject | None = None,
    ) -> None:
        """Create the controller (no thread yet) writing to ``state``'s model state."""
        super().__init__(parent)
        self.state = state
        self.models: ModelState = state.models
        self.settings = settings
        self.notifications = notifications
        self.controller = InferenceController(self, self.models)
        self._autorun = bool(settings.autorun)
        self._said_runtime: tuple[str, tuple[str, ...]] | None = None
        ctl, notify = self.controller, notifications.notify
        ctl.modelLoaded.connect(self._on_model_loaded)
        ctl.modelFailed.connect(lambda message: notify(message, "error"))
        ctl.resultReady.connect(self._on_result)
        ctl.runtimeChanged.connect(self._on_runtime)
        ctl.deviceProblem.connect(lambda text: notify(text, "warning"))
        ctl.failed.connect(lambda msg: notify(msg, "error"))
        ctl.cancelled.connect(self._on_cancelled)

    # ------------------------------------------------------------------ commands
    @property
    def loading(self) -> bool:
        """Whether a model load is running or queued."""
        return self.controller.loading

    @property
    def autorun(self) -> bool:
        """Whether images are segmented as soon as they are shown (remembered)."""
        return self._autorun

    def set_autorun(self, on: bool) -> None:
        """Turn auto-run on or off; turned on, the current image is segmented if needed."""
        on = bool(on)
        changed = on != self._autorun
        self._autorun = on
        self.settings.autorun = on
        if changed:
            self.autorunChanged.emit(on)
        if on and self.state.document is not None:
            self.maybe_autorun(self.state.document)

    def load_model(self, path: str | os.PathLike[str] | None = None) -> None:
        """Load a checkpoint (None: the default model) on the preferred device."""
        self.controller.load_model(Path(path) if path is not None else None, self.settings.device)

    def set_device(self, device: str) -> None:
        """Switch the device (the model is reloaded there)."""
        self.settings.device = device
        loaded = self.models.loaded
        if loaded is not None or self.controller.loading:
            self.controller.load_model(loaded.path if loaded else self.models.path, device)

    def run_current(self) -> bool:
        """Segment the current image; False (with a message) when it cannot."""
        doc = self.state.document
        if doc is None:
            self.notifications.notify("Open an image first", "warning")
            return False
        self.runRequested.emit(doc)
        if self.models.loaded is None and not self.controller.loading:
            self.notifications.notify("No model is loaded: open a checkpoint", "warning")
            return False
        self.controller.run(doc)
        return True

    def cancel(self) -> bool:
        """Cancel the running segmentations; True if the current model's was running."""
        self.cancelRequested.emit()
        return self.controller.cancel()

    def maybe_autorun(self, doc: ImageDocument) -> None:
        """Segment ``doc`` now if auto-run is on and it has no result for this model."""
        if not self._autorun:
            return
        ctl = self.controller
        if self.models.loaded is None and not ctl.loading:
            return
        model_id = self.models.loaded.model_id if self.models.loaded is not None else None
        if doc.prediction(model_id) is None and ctl.running_document() is not doc:
            ctl.run(doc)

    def shutdown(self) -> None:
        """Cancel everything and stop the inference thread."""
        self.controller.shutdown()

    # ------------------------------------------------------------------ controller events
    def _on_model_loaded(self, loaded: LoadedModel) -> None:
        # torch and the model add ~200k long-lived objects; without this, a full garbage
        # collection on the GUI thread scans them all (100+ ms stalls while inference runs)
        gc.freeze()
        self.notifications.notify(f"Loaded model {loaded.path} on {loaded.device}")
        doc = self.state.document
        if doc is not None:
            self.maybe_autorun(doc)

    def _on_result(self, _doc: ImageDocument, prediction: Any) -> None:
        for message in prediction.messages:
            self.notifications.notify(message, "warning")

    def _on_runtime(self, runtime: str, notes: tuple[str, ...]) -> None:
        """Say which inference backend runs, and why a speed-up was left out (no silent
        fallbacks: the Model dock keeps both)."""
        if (runtime, tuple(notes)) == self._said_runtime:
            return  # the same as before this model load: said once is enough
        self._said_runtime = (runtime, tuple(notes))
        fell_back = any("eager" in n or "failed" in n for n in notes)
        text = f"Inference runs on {runtime}" + (f" ({'; '.join(notes)})" if notes else "")
        self.notifications.notify(text, "warning" if fell_back else "info")

    def _on_cancelled(self, doc: ImageDocument | None) -> None:
        title = doc.title if doc is not None else "the image"
        self.notifications.notify(f"Segmentation of {title} cancelled")
