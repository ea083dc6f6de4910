"""ModelsUI: the Model menu's import, download, library, model set and ONNX export commands.

It owns the task runner (import / download / export) and the model set's runner, shows their
progress in the status bar (keys "task" and "set") and reports through the notifications
(never modal). The model set itself is the model state's (:attr:`ModelState.model_set`):
the compare view, the statistics and the exports read it from there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject
from PySide6.QtWidgets import QFileDialog

from app.common.checkpoints import (
    CheckpointSummary,
    import_destination,
    library,
    library_dir,
    summarize,
)
from app.features.host import AppContext, WindowHost
from app.features.models.download_dialog import DownloadDialog
from app.features.models.model_set_dialog import ModelSetDialog
from app.state.document import ImageDocument
from app.state.model_set import legend, pane_sources
from app.workers.model_set_runner import SetRunner
from app.workers.model_tasks import EXPORT, IMPORT, TaskResult, TaskRunner
from core.errors import CheckpointError

IMPORT_FILTER = ("Model weights (*.caffemodel *.pth *.pt *.tar *.safetensors);;"
                 "Caffe models (*.caffemodel);;pytorch-fcn state dicts (*.pth *.pt *.tar);;"
                 "safetensors (*.safetensors);;All files (*)")


class ModelsUI(QObject):
    """Model management as a feature (wiring only)."""

    def __init__(self, context: AppContext, host: WindowHost) -> None:
        """Connect the Model menu's actions; run the model set's checkpoints when needed."""
        super().__init__(host.widget())
        self.context, self.host = context, host
        self.tasks = TaskRunner(self)
        self.model_set = context.models.model_set
        self.set_runner = SetRunner(self)
        self.extra_checkpoints: list[Path] = []
        self.download_dialog: DownloadDialog | None = None
        self.set_dialog: ModelSetDialog | None = None
        self._import_jobs: set[int] = set()
        self._set_text = ""
        self._connect()
        host.add_shutdown(self.shutdown)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    # ------------------------------------------------------------------ construction
    def _connect(self) -> None:
        ctx, host = self.context, self.host
        host.action("import_model").triggered.connect(lambda: self.choose_import())
        host.action("download_models").triggered.connect(lambda: self.show_download_dialog())
        host.action("model_set").triggered.connect(lambda: self.show_model_set_dialog())
        host.action("export_onnx").triggered.connect(lambda: self.choose_export())
        library_menu = host.menu("Model/Library")
        assert library_menu is not None
        self.library_menu = library_menu
        library_menu.aboutToShow.connect(self._fill_library_menu)
        ctx.inference.runRequested.connect(lambda doc: self.run_set(doc, force=True))
        ctx.inference.cancelRequested.connect(lambda: self.set_runner.cancel())
        t = self.tasks
        t.progress.connect(lambda _job, f, text: self._show("task", text, f))
        t.finished.connect(self._on_task_finished)
        t.failed.connect(self._on_task_failed)
        t.cancelled.connect(lambda _job, _kind, text: self._task_over(text, "info"))
        r = self.set_runner
        r.started.connect(self._on_set_started)
        r.progress.connect(lambda f: self._show("set", self._set_text, f))
        r.busyChanged.connect(lambda busy: None if busy else self.host.hide_progress("set"))
        r.failed.connect(lambda msg: self._notify(msg, "error"))
        r.idChanged.connect(lambda _old, _new: self.model_set.reload())
        self.model_set.changed.connect(self._on_set_changed)
        ctx.state.documentChanged.connect(lambda _doc: self.run_set())
        ctx.state.modelChanged.connect(lambda _info: self.run_set())

    def _on_set_started(self, _doc: ImageDocument, member: CheckpointSummary) -> None:
        self._set_text = f"Model set: segmenting with {member.name}…"
        self._show("set", self._set_text, -1.0)

    # ------------------------------------------------------------------ import
    def choose_import(self) -> int | None:
        """Ask for a Caffe, pytorch-fcn or safetensors file and import it."""
        settings = self.context.settings
        path, _ = QFileDialog.getOpenFileName(self.host.widget(), "Import Model",
                                              settings.last_dir, IMPORT_FILTER)
        if not path:
            return None
        settings.last_dir = str(Path(path).parent)
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
            self.context.inference.load_model(str(src))
            return None
        job = self.tasks.submit(IMPORT, src=src, dest=dest)
        self._import_jobs.add(job)
        self._show("task", f"Importing {src.name}…", -1.0)
        return job

    # ------------------------------------------------------------------ download
    def show_download_dialog(self) -> DownloadDialog:
        """Show the (non-modal) download dialog."""
        if self.download_dialog is None:
            dialog = DownloadDialog(self.tasks, self.host.widget())
            dialog.loadRequested.connect(lambda p: self.context.inference.load_model(str(p)))
            self.download_dialog = dialog
        self.download_dialog.refresh()
        self.download_dialog.show()
        self.download_dialog.raise_()
        return self.download_dialog

    # ------------------------------------------------------------------ export
    def current_checkpoint(self) -> Path | None:
        """The loaded model's checkpoint file, if any."""
        return self.context.models.checkpoint

    def choose_export(self) -> int | None:
        """Ask where to write the current model as ONNX and export it."""
        ckpt = self.current_checkpoint()
        if ckpt is None:
            self._notify("No model is loaded: nothing to export", "warning")
            return None
        start = Path(self.context.settings.last_dir or ckpt.parent) / f"{ckpt.stem}.onnx"
        path, _ = QFileDialog.getSaveFileName(self.host.widget(), "Export ONNX", str(start),
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
        menu = self.library_menu
        menu.clear()
        current = self.current_checkpoint()
        for s in self.library():
            action = menu.addAction(s.describe(),
                                    lambda p=s.path: self.context.inference.load_model(str(p)))
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
        info = self.context.models.info
        name = (info.name or "unnamed") if info is not None else ""
        if self.set_dialog is not None:
            self.set_dialog.deleteLater()
        self.set_dialog = ModelSetDialog(self.model_set, name, self.extra_checkpoints,
                                         self.context.settings.last_dir, self.host.widget())
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
            except CheckpointError as exc:
                self._notify(f"Model set not changed: {exc}", "error")
                return False
        self.model_set.set_members(members)
        return True

    def run_set(self, doc: ImageDocument | None = None, force: bool = False) -> int:
        """Predict ``doc`` (default: the current one) with the set's other checkpoints.

        Runs on document changes when auto-run is on, and always with ``force`` (Run, or a
        new model set). Returns how many predictions are queued or running.
        """
        st = self.context.state
        doc = doc or st.document
        if doc is None or not self.model_set.active:
            return 0
        if not force and not self.context.inference.autorun:
            return 0
        if force:
            self.set_runner.reset_failures()
        members = [m for m in self.model_set.checkpoints() if m.model_id != st.model_id]
        return self.set_runner.run(doc, members, self.context.settings.device)

    def _on_set_changed(self) -> None:
        sources = pane_sources(self.context.state, self.model_set)
        if self.model_set.active:
            self._notify(f"Compare view model set: {legend(sources)}")
            self.run_set(force=True)
        else:
            self._notify("Compare view: every pane shows the current model")
            self.set_runner.release_models()

    # ------------------------------------------------------------------ task events
    def _on_task_finished(self, job: int, result: object) -> None:
        assert isinstance(result, TaskResult)
        self._task_over(result.message, "info")
        if job in self._import_jobs:
            self._import_jobs.discard(job)
            self.context.inference.load_model(str(result.path))

    def _on_task_failed(self, job: int, _kind: str, message: str) -> None:
        self._import_jobs.discard(job)
        self._task_over(message, "error")
        self.host.show_dock("messages")

    def _task_over(self, text: str, level: str) -> None:
        self.host.hide_progress("task")
        self._notify(text, level)

    # ------------------------------------------------------------------ status
    def _notify(self, text: str, level: str = "info") -> None:
        self.context.notifications.notify(text, level)

    def _show(self, key: str, text: str, fraction: float) -> None:
        self.host.show_progress(key, text, fraction)

    def shutdown(self) -> None:
        """Cancel the tasks and stop both threads."""
        self.tasks.shutdown()
        self.set_runner.shutdown()


def install_models(context: AppContext, host: WindowHost) -> ModelsUI:
    """Add model management to the window ``host`` stands for."""
    return ModelsUI(context, host)
