"""ModelsUI: the Model menu's import, download, library, model set and ONNX export commands.

It owns the task runner (import / download / export) and the model set's runner, shows their
progress in the status bar and reports through the window's notifications (never modal).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication, QObject
from PySide6.QtWidgets import QFileDialog, QLabel, QProgressBar

from app.common.checkpoints import (
    CheckpointSummary,
    HeaderError,
    import_destination,
    library,
    library_dir,
    summarize,
)
from app.features.models.download_dialog import DownloadDialog
from app.features.models.model_set_dialog import ModelSetDialog
from app.state.document import ImageDocument
from app.state.model_set import ModelSet, legend, pane_sources
from app.workers.model_set_runner import SetRunner
from app.workers.model_tasks import EXPORT, IMPORT, TaskResult, TaskRunner

if TYPE_CHECKING:
    from app.shell.main_window import MainWindow

IMPORT_FILTER = ("Model weights (*.caffemodel *.pth *.pt *.tar *.safetensors);;"
                 "Caffe models (*.caffemodel);;pytorch-fcn state dicts (*.pth *.pt *.tar);;"
                 "safetensors (*.safetensors);;All files (*)")


class ModelsUI(QObject):
    """Adds model management to a :class:`~app.shell.main_window.MainWindow` (wiring only)."""

    def __init__(self, window: MainWindow) -> None:
        """Connect the window's Model menu actions and the compare view's model set."""
        super().__init__(window)
        self.window = window
        self.tasks = TaskRunner(self)
        self.model_set = ModelSet(self)
        self.set_runner = SetRunner(self)
        self.extra_checkpoints: list[Path] = []
        self.download_dialog: DownloadDialog | None = None
        self.set_dialog: ModelSetDialog | None = None
        self._import_jobs: set[int] = set()
        self._status: dict[str, tuple[str, float]] = {}
        self._build_status()
        self._connect()
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    # ------------------------------------------------------------------ construction
    def _build_status(self) -> None:
        bar = self.window.statusBar()
        self.status_label = QLabel("", self.window)
        self.status_progress = QProgressBar(self.window)
        self.status_progress.setFixedWidth(120)
        self.status_progress.setTextVisible(False)
        bar.addPermanentWidget(self.status_label)
        bar.addPermanentWidget(self.status_progress)
        self.status_label.hide()
        self.status_progress.hide()

    def _connect(self) -> None:
        a, w = self.window.actions, self.window
        a.import_model.triggered.connect(lambda: self.choose_import())
        a.download_models.triggered.connect(lambda: self.show_download_dialog())
        a.model_set.triggered.connect(lambda: self.show_model_set_dialog())
        a.export_onnx.triggered.connect(lambda: self.choose_export())
        a.library_menu.aboutToShow.connect(self._fill_library_menu)
        a.run.triggered.connect(lambda: self.run_set(force=True))
        a.cancel.triggered.connect(lambda: self.set_runner.cancel())
        t = self.tasks
        t.progress.connect(lambda _job, f, text: self._show("task", text, f))
        t.finished.connect(self._on_task_finished)
        t.failed.connect(self._on_task_failed)
        t.cancelled.connect(lambda _job, _kind, text: self._task_over(text, "info"))
        r = self.set_runner
        r.started.connect(lambda _doc, m: self._show("set", f"Model set: segmenting with "
                                                     f"{m.name}…", -1.0))
        r.progress.connect(lambda f: self._show("set", self._status.get("set", ("", 0))[0], f))
        r.busyChanged.connect(lambda busy: None if busy else self._hide("set"))
        r.resultReady.connect(self._on_set_result)
        r.failed.connect(lambda msg: self._notify(msg, "error"))
        r.idChanged.connect(lambda _old, _new: self.model_set.reload())
        self.model_set.changed.connect(self._on_set_changed)
        w.state.documentChanged.connect(lambda _doc: self.run_set())
        w.state.modelChanged.connect(lambda _info: self.run_set())
        w.compare.set_model_set(self.model_set)
        w.stats.set_model_set(self.model_set)
        w.exporter.model_set = self.model_set

    # ------------------------------------------------------------------ import
    def choose_import(self) -> int | None:
        """Ask for a Caffe, pytorch-fcn or safetensors file and import it."""
        path, _ = QFileDialog.getOpenFileName(self.window, "Import Model",
                                              self.window.settings.last_dir, IMPORT_FILTER)
        if not path:
            return None
        self.window.settings.last_dir = str(Path(path).parent)
        return self.import_model(path)

    def import_model(self, path: str | os.PathLike[str]) -> int | None:
        """Convert ``path`` into ``cache_dir()/models/<stem>.safetensors`` and load it.

        Returns the task's job id (None when ``path`` already is that checkpoint: it is
        just loaded).
        """
        src = Path(path)
        dest = import_destination(src, library_dir())
        if dest.exists() and dest.resolve() == src.resolve():
            self._notify(f"{src} is already in the model library: loading it")
            self.window.load_model(str(src))
            return None
        job = self.tasks.submit(IMPORT, src=src, dest=dest)
        self._import_jobs.add(job)
        self._show("task", f"Importing {src.name}…", -1.0)
        return job

    # ------------------------------------------------------------------ download
    def show_download_dialog(self) -> DownloadDialog:
        """Show the (non-modal) download dialog."""
        if self.download_dialog is None:
            dialog = DownloadDialog(self.tasks, self.window)
            dialog.loadRequested.connect(lambda p: self.window.load_model(str(p)))
            self.download_dialog = dialog
        self.download_dialog.refresh()
        self.download_dialog.show()
        self.download_dialog.raise_()
        return self.download_dialog

    # ------------------------------------------------------------------ export
    def current_checkpoint(self) -> Path | None:
        """The loaded model's checkpoint file, if any."""
        loaded = self.window.controller.model
        return loaded.path if loaded is not None else None

    def choose_export(self) -> int | None:
        """Ask where to write the current model as ONNX and export it."""
        ckpt = self.current_checkpoint()
        if ckpt is None:
            self._notify("No model is loaded: nothing to export", "warning")
            return None
        start = Path(self.window.settings.last_dir or ckpt.parent) / f"{ckpt.stem}.onnx"
        path, _ = QFileDialog.getSaveFileName(self.window, "Export ONNX", str(start),
                                              "ONNX models (*.onnx)")
        if not path:
            return None
        return self.export_onnx(path)

    def export_onnx(self, out: str | os.PathLike[str]) -> int | None:
        """Export the current model to ``out`` (``.onnx`` added if missing) in the worker."""
        ckpt = self.current_checkpoint()
        if ckpt is None:
            self._notify("No model is loaded: nothing to export", "warning")
            return None
        out = Path(out)
        if out.suffix.lower() != ".onnx":
            out = out.with_name(out.name + ".onnx")
        self._show("task", f"Exporting {ckpt.name} to ONNX…", -1.0)
        return self.tasks.submit(EXPORT, checkpoint=ckpt, out=out)

    # ------------------------------------------------------------------ library
    def library(self) -> list[CheckpointSummary]:
        """Checkpoints in the models folder and those chosen by hand this session."""
        return library(tuple(self.extra_checkpoints))

    def _fill_library_menu(self) -> None:
        menu = self.window.actions.library_menu
        menu.clear()
        current = self.current_checkpoint()
        for s in self.library():
            action = menu.addAction(s.describe(), lambda p=s.path: self.window.load_model(str(p)))
            action.setToolTip(str(s.path))
            action.setCheckable(True)
            action.setChecked(current is not None and current.resolve() == s.path.resolve())
        if menu.isEmpty():
            menu.addAction("(no imported or downloaded models yet)").setEnabled(False)
        menu.addSeparator()
        menu.addAction(f"Folder: {library_dir()}").setEnabled(False)

    # ------------------------------------------------------------------ model set
    def show_model_set_dialog(self) -> ModelSetDialog:
        """Show the model set dialog (applied on OK)."""
        info = self.window.state.model_info
        name = (info.name or "unnamed") if info is not None else ""
        if self.set_dialog is not None:
            self.set_dialog.deleteLater()
        self.set_dialog = ModelSetDialog(self.model_set, name, self.extra_checkpoints,
                                         self.window.settings.last_dir, self.window)
        self.set_dialog.finished.connect(self._remember_browsed)
        self.set_dialog.open()
        return self.set_dialog

    def _remember_browsed(self, _result: int) -> None:
        dialog = self.set_dialog
        if dialog is None:
            return
        known = {p.resolve() for p in self.extra_checkpoints}
        for s in dialog.summaries.values():
            if s.path.parent.resolve() != library_dir().resolve() and s.path.resolve() not in known:
                self.extra_checkpoints.append(s.path)

    def set_model_set(self, paths: Mapping[str, str | os.PathLike[str] | None]) -> bool:
        """Give panes their own checkpoints (variant -> path; None or missing: current model)."""
        members: dict[str, CheckpointSummary | None] = {}
        for variant, path in paths.items():
            if path is None:
                members[variant] = None
                continue
            try:
                members[variant] = summarize(path)
            except HeaderError as exc:
                self._notify(f"Model set not changed: {exc}", "error")
                return False
        self.model_set.set_members(members)
        return True

    def run_set(self, doc: ImageDocument | None = None, force: bool = False) -> int:
        """Predict ``doc`` (default: the current one) with the set's other checkpoints.

        Runs on document changes when auto-run is on, and always with ``force`` (Run, or a
        new model set). Returns how many predictions are queued or running.
        """
        st = self.window.state
        doc = doc or st.document
        if doc is None or not self.model_set.active:
            return 0
        if not force and not self.window.actions.autorun.isChecked():
            return 0
        if force:
            self.set_runner.reset_failures()
        members = [m for m in self.model_set.checkpoints() if m.model_id != st.model_id]
        return self.set_runner.run(doc, members, self.window.settings.device)

    def _on_set_changed(self) -> None:
        sources = pane_sources(self.window.state, self.model_set)
        if self.model_set.active:
            self._notify(f"Compare view model set: {legend(sources)}")
            self.run_set(force=True)
        else:
            self._notify("Compare view: every pane shows the current model")
            self.set_runner.release_models()

    def _on_set_result(self, doc: ImageDocument, _model_id: str) -> None:
        if doc is self.window.state.document:
            self.window.compare.invalidate()
            self.window.stats.refresh()

    # ------------------------------------------------------------------ task events
    def _on_task_finished(self, job: int, result: object) -> None:
        assert isinstance(result, TaskResult)
        self._task_over(result.message, "info")
        if job in self._import_jobs:
            self._import_jobs.discard(job)
            self.window.load_model(str(result.path))

    def _on_task_failed(self, job: int, _kind: str, message: str) -> None:
        self._import_jobs.discard(job)
        self._task_over(message, "error")
        self.window.docks["messages"].show()

    def _task_over(self, text: str, level: str) -> None:
        self._hide("task")
        self._notify(text, level)

    # ------------------------------------------------------------------ status
    def _notify(self, text: str, level: str = "info") -> None:
        self.window.notifications.notify(text, level)

    def _show(self, source: str, text: str, fraction: float) -> None:
        self._status[source] = (text, fraction)
        self._render_status()

    def _hide(self, source: str) -> None:
        self._status.pop(source, None)
        self._render_status()

    def _render_status(self) -> None:
        if not self._status:
            self.status_label.hide()
            self.status_progress.hide()
            return
        text, fraction = list(self._status.values())[-1]
        self.status_label.setText(text)
        if fraction < 0:
            self.status_progress.setRange(0, 0)
        else:
            self.status_progress.setRange(0, 1000)
            self.status_progress.setValue(round(1000 * fraction))
        self.status_label.show()
        self.status_progress.show()

    def shutdown(self) -> None:
        """Cancel the tasks and stop both threads."""
        self.tasks.shutdown()
        self.set_runner.shutdown()
