"""The main window's model side: loading checkpoints, devices, running and cancelling."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QFileDialog

from app.state.document import ImageDocument
from app.workers.inference import LoadedModel

if TYPE_CHECKING:
    from app.shell.main_window import MainWindow

    _Base = MainWindow
else:
    _Base = object


class ModelMixin(_Base):
    """Model, device and inference commands of :class:`~app.shell.main_window.MainWindow`."""

    def connect_model_actions(self) -> None:
        """Wire the Model menu and the controller's signals."""
        a, ctl = self.actions, self.controller
        a.open_model.triggered.connect(lambda: self.open_model())
        a.default_model.triggered.connect(lambda: self.load_model(None))
        a.run.triggered.connect(self.run_current)
        a.cancel.triggered.connect(self.cancel)
        a.autorun.setChecked(self.settings.autorun)
        a.autorun.toggled.connect(self._on_autorun)
        a.device_group.triggered.connect(lambda action: self.set_device(action.data()))
        ctl.modelLoading.connect(self._on_model_loading)
        ctl.modelLoaded.connect(self._on_model_loaded)
        ctl.modelFailed.connect(self._on_model_failed)
        ctl.devicesFound.connect(lambda devs: a.set_devices(devs, self.settings.device))
        ctl.started.connect(self._on_started)
        ctl.progress.connect(self._on_progress)
        ctl.resultReady.connect(self._on_result)
        ctl.runtimeChanged.connect(self._on_runtime)
        ctl.deviceProblem.connect(lambda text: self.notifications.notify(text, "warning"))
        ctl.failed.connect(lambda msg: self.notifications.notify(msg, "error"))
        ctl.cancelled.connect(self._on_cancelled)
        ctl.busyChanged.connect(self._on_busy)

    # ------------------------------------------------------------------ commands
    def load_model(self, path: str | os.PathLike[str] | None = None) -> None:
        """Load a checkpoint (None: the default model) on the preferred device."""
        self.model_path = Path(path) if path is not None else None
        self.controller.load_model(self.model_path, self.settings.device)

    def open_model(self) -> None:
        """Ask for a checkpoint and load it."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Open Checkpoint", self.settings.last_dir,
            "FCN Studio checkpoints (*.safetensors);;All files (*)",
        )
        if path:
            self.load_model(path)

    def set_device(self, device: str) -> None:
        """Switch the device (the model is reloaded there)."""
        self.settings.device = device
        action = self.actions.device_actions.get(device)
        if action is not None and not action.isChecked():
            action.setChecked(True)
        loaded = self.controller.model
        if loaded is not None or self.controller.loading:
            self.controller.load_model(loaded.path if loaded else self.model_path, device)

    def run_current(self) -> bool:
        """Segment the current image; False (with a message) when it cannot."""
        doc = self.state.document
        if doc is None:
            self.notifications.notify("Open an image first", "warning")
            return False
        if self.controller.model is None and not self.controller.loading:
            self.notifications.notify("No model is loaded: open a checkpoint", "warning")
            return False
        self.controller.run(doc)
        return True

    def cancel(self) -> None:
        """Cancel the running segmentation."""
        if self.controller.cancel():
            self.statusBar().showMessage("Cancelling…", 3000)

    def maybe_autorun(self, doc: ImageDocument) -> None:
        """Segment ``doc`` now if auto-run is on and it has no result for this model."""
        if not self.actions.autorun.isChecked():
            return
        ctl = self.controller
        if ctl.model is None and not ctl.loading:
            return
        model_id = ctl.model.model_id if ctl.model is not None else None
        if doc.prediction(model_id) is None and ctl.running_document() is not doc:
            ctl.run(doc)

    # ------------------------------------------------------------------ controller events
    def _on_autorun(self, on: bool) -> None:
        self.settings.autorun = on
        if on and self.state.document is not None:
            self.maybe_autorun(self.state.document)

    def _on_model_loading(self, path: str) -> None:
        self.model_label.setText("Loading model…")
        self.statusBar().showMessage(f"Loading model {path or '(default)'}…", 5000)

    def _on_model_loaded(self, loaded: LoadedModel) -> None:
        # torch and the model add ~200k long-lived objects; without this, a full garbage
        # collection on the GUI thread scans them all (100+ ms stalls while inference runs)
        gc.freeze()
        info = loaded.info
        self.state.set_model(info, loaded.model_id)
        self.model_panel.set_source(str(loaded.path), loaded.device)
        name = info.name or loaded.path.stem
        self.model_label.setText(f"Model: {name} · {len(info.class_names)} classes · "
                                 f"{loaded.device}")
        self.notifications.notify(f"Loaded model {loaded.path} on {loaded.device}")
        doc = self.state.document
        if doc is not None:
            self.maybe_autorun(doc)

    def _on_model_failed(self, message: str) -> None:
        self.notifications.notify(message, "error")
        loaded = self.controller.model
        if loaded is None:
            self.model_label.setText("No model")
        else:
            self.model_label.setText(f"Model: {loaded.info.name or loaded.path.stem} · "
                                     f"{loaded.device}")
        self.docks["messages"].show()

    def _on_started(self, doc: ImageDocument) -> None:
        self.progress.setRange(0, 0)  # busy until the first fraction arrives
        self.statusBar().showMessage(f"Segmenting {doc.title}…")

    def _on_progress(self, fraction: float) -> None:
        if fraction > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(1000 * fraction))

    def _on_result(self, doc: ImageDocument, prediction: Any) -> None:
        tiled = " in tiles" if prediction.tiled else ""
        self.statusBar().showMessage(
            f"Segmented {doc.title} in {prediction.seconds:.2f} s on {prediction.device}{tiled}",
            8000,
        )
        for message in prediction.messages:
            self.notifications.notify(message, "warning")

    def _on_runtime(self, runtime: str, notes: tuple[str, ...]) -> None:
        """Say which inference backend runs, and why a speed-up was left out (no silent
        fallbacks: the Model dock keeps both)."""
        self.model_panel.set_runtime(runtime, notes)
        self.model_label.setToolTip(f"Inference: {runtime}")
        if (runtime, tuple(notes)) == getattr(self, "_said_runtime", None):
            return  # the same as before this model load: said once is enough
        self._said_runtime = (runtime, tuple(notes))
        fell_back = any("eager" in n or "failed" in n for n in notes)
        text = f"Inference runs on {runtime}" + (f" ({'; '.join(notes)})" if notes else "")
        self.notifications.notify(text, "warning" if fell_back else "info")

    def _on_cancelled(self, doc: ImageDocument | None) -> None:
        title = doc.title if doc is not None else "the image"
        self.notifications.notify(f"Segmentation of {title} cancelled")

    def _on_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy and self.controller.running_document() is not None)
        if busy and self.controller.running_document() is None:
            self.progress.setRange(0, 0)
