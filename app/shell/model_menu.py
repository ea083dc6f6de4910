"""ModelMenu: the Model menu's commands (Run and Cancel are connected here only) and what the
window shows of the model: the status-bar model label and the inference progress."""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog, QMainWindow

from app.services.inference import InferenceService
from app.shell.actions import Actions
from app.shell.status_bar import StatusBar
from app.state.document import ImageDocument
from app.state.model import LoadedModel


class ModelMenu:
    """Wires the Model menu to the inference service and shows the model's state."""

    def __init__(self, window: QMainWindow, actions: Actions, status: StatusBar,
                 inference: InferenceService) -> None:
        """Connect ``actions``' model commands; follow the model state in ``status``."""
        self.window, self.actions, self.status = window, actions, status
        self.inference, self.models = inference, inference.models
        a, svc, ctl, m = self.actions, self.inference, self.inference.controller, self.models
        a.open_model.triggered.connect(lambda: self.open_model())
        a.default_model.triggered.connect(lambda: self.inference.load_model(None))
        a.run.triggered.connect(self.inference.run_current)
        a.cancel.triggered.connect(self.cancel)
        a.autorun.setChecked(svc.autorun)
        a.autorun.toggled.connect(svc.set_autorun)
        svc.autorunChanged.connect(a.autorun.setChecked)
        a.device_group.triggered.connect(lambda action: self.set_device(action.data()))
        ctl.devicesFound.connect(lambda devs: a.set_devices(devs, self.inference.settings.device))
        m.loading.connect(self._on_model_loading)
        m.changed.connect(self._show_model)
        m.failed.connect(self._on_model_failed)
        m.runtimeChanged.connect(
            lambda runtime, _notes: self.status.model_label.setToolTip(f"Inference: {runtime}"))
        ctl.busyChanged.connect(self._on_busy)
        ctl.started.connect(self._on_started)
        ctl.progress.connect(lambda f: f > 0 and self.status.update_fraction("inference", f))
        ctl.resultReady.connect(self._on_result)

    def open_model(self) -> None:
        """Ask for a checkpoint and load it."""
        path, _ = QFileDialog.getOpenFileName(
            self.window, "Open Checkpoint", self.inference.settings.last_dir,
            "FCN Studio checkpoints (*.safetensors);;All files (*)",
        )
        if path:
            self.inference.load_model(path)

    def set_device(self, device: str) -> None:
        """Switch the device (the model is reloaded there)."""
        action = self.actions.device_actions.get(device)
        if action is not None and not action.isChecked():
            action.setChecked(True)
        self.inference.set_device(device)

    def cancel(self) -> None:
        """Cancel the running segmentations."""
        if self.inference.cancel():
            self.window.statusBar().showMessage("Cancelling…", 3000)

    def _on_model_loading(self, path: str) -> None:
        self.status.model_label.setText("Loading model…")
        self.window.statusBar().showMessage(f"Loading model {path or '(default)'}…", 5000)

    def _show_model(self, loaded: LoadedModel | None = None) -> None:
        loaded = self.models.loaded
        if loaded is None:
            self.status.model_label.setText("No model")
            return
        name = loaded.info.name or loaded.path.stem
        self.status.model_label.setText(
            f"Model: {name} · {len(loaded.info.class_names)} classes · {loaded.device}")

    def _on_model_failed(self, _message: str) -> None:
        loaded = self.models.loaded
        if loaded is None:
            self.status.model_label.setText("No model")
        else:
            self.status.model_label.setText(f"Model: {loaded.info.name or loaded.path.stem} · "
                                            f"{loaded.device}")
        self.window.docks["messages"].show()

    def _on_busy(self, busy: bool) -> None:
        if not busy:
            self.status.hide_progress("inference")
            return
        predicting = self.inference.controller.running_document() is not None
        self.status.show_progress("inference", "", -1.0, self.cancel if predicting else None)

    def _on_started(self, doc: ImageDocument) -> None:
        self.status.update_fraction("inference", -1.0)  # busy until the first fraction
        self.window.statusBar().showMessage(f"Segmenting {doc.title}…")

    def _on_result(self, doc: ImageDocument, prediction: object) -> None:
        tiled = " in tiles" if getattr(prediction, "tiled", False) else ""
        self.window.statusBar().showMessage(
            f"Segmented {doc.title} in {prediction.seconds:.2f} s on {prediction.device}{tiled}",
            8000,
        )
