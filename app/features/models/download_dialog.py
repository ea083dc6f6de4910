"""The "Download published models" dialog: the registry, its status, download with cancel.

Non-modal: downloads run in the :class:`~app.workers.model_tasks.TaskRunner`'s thread; a
cancelled download keeps its ``.part`` file and resumes from it next time.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.common.checkpoints import library_dir
from app.workers.model_tasks import DOWNLOAD, TaskResult, TaskRunner, size_text
from core.checkpoints import download as registry

COLUMNS: tuple[str, ...] = ("Name", "Net", "File", "Size", "MD5", "Status")


def entry_status(entry: registry.PublishedModel, folder: Path) -> str:
    """Whether a registry entry is converted, downloaded, partly downloaded or not there."""
    raw = folder / entry.filename
    part = raw.with_name(raw.name + ".part")
    if raw.with_suffix(".safetensors").is_file():
        return "ready (converted)"
    if raw.is_file():
        return "downloaded, not converted"
    if part.is_file():
        return f"partial: {size_text(part.stat().st_size)} kept, resumes"
    return "not downloaded"


class DownloadDialog(QDialog):
    """Lists :data:`core.checkpoints.download.PUBLISHED`; downloads, verifies and converts
    the chosen one.

    Signals:
        modelReady(object): the converted checkpoint's path.
        loadRequested(object): the user asked to load that checkpoint.
    """

    modelReady = Signal(object)
    loadRequested = Signal(object)

    def __init__(self, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        """Build the table from the registry; ``tasks`` runs the downloads."""
        super().__init__(parent)
        self.setWindowTitle("Download Published Models")
        self.setObjectName("download-dialog")
        self.setModal(False)
        self.resize(940, 440)
        self.tasks = tasks
        self.job: int | None = None
        self.job_name = ""
        self.folder_label = QLabel(self)
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.detail = QLabel(self)
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.message = QLabel("", self)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(self)
        self.download_button = QPushButton("Download", self)
        self.cancel_button = QPushButton("Cancel Download", self)
        self.load_button = QPushButton("Load Model", self)
        for b in (self.download_button, self.cancel_button, self.load_button):
            buttons.addButton(b, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        self.download_button.clicked.connect(lambda: self.download())
        self.cancel_button.clicked.connect(self.cancel)
        self.load_button.clicked.connect(self._load)
        layout = QVBoxLayout(self)
        layout.addWidget(self.folder_label)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.detail)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        tasks.started.connect(self._on_started)
        tasks.progress.connect(self._on_progress)
        tasks.finished.connect(self._on_finished)
        tasks.failed.connect(self._on_failed)
        tasks.cancelled.connect(self._on_cancelled)
        self.refresh()
        if self.table.rowCount():
            self.table.selectRow(0)

    # ------------------------------------------------------------------ public API
    @property
    def folder(self) -> Path:
        """Where models are downloaded to (and where a file fetched by hand goes)."""
        return library_dir()

    def names(self) -> list[str]:
        """The registry names, in table order."""
        return [self.table.item(r, 0).text() for r in range(self.table.rowCount())]

    def status(self, name: str) -> str:
        """The status cell of ``name``."""
        return self.table.item(self.names().index(name), COLUMNS.index("Status")).text()

    def selected_name(self) -> str | None:
        """The selected registry name."""
        rows = self.table.selectionModel().selectedRows()
        return self.table.item(rows[0].row(), 0).text() if rows else None

    def select(self, name: str) -> None:
        """Select the row of ``name``."""
        self.table.selectRow(self.names().index(name))

    def refresh(self) -> None:
        """Re-read the registry and each file's status."""
        published = registry.PUBLISHED
        selected = self.selected_name()
        folder = self.folder
        self.folder_label.setText(f"Models folder: {folder}  (a file fetched by other means "
                                  "goes here under its published name)")
        self.table.setRowCount(len(published))
        for r, entry in enumerate(published.values()):
            net = f"FCN-{entry.variant}{' at-once' if entry.at_once else ''}"
            size = size_text(entry.size) if entry.size else "unknown"
            cells = (entry.name, net, entry.filename, size, entry.md5 or "not published",
                     entry_status(entry, folder))
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(f"{entry.url}\n{entry.note}".strip())
                self.table.setItem(r, c, item)
        if selected in published:
            self.select(selected)
        self._update_buttons()

    def download(self, name: str | None = None) -> int | None:
        """Download (resuming), verify and convert ``name`` (default: the selected one)."""
        name = name or self.selected_name()
        if name is None or self.job is not None:
            return None
        if name in self.names() and name != self.selected_name():
            self.select(name)
        self.job_name = name
        self.job = self.tasks.submit(DOWNLOAD, name=name, folder=self.folder)
        self.message.setText(f"Starting {name}…")
        self._update_buttons()
        return self.job

    def cancel(self) -> None:
        """Cancel the running download (its .part file is kept)."""
        if self.job is not None:
            self.tasks.cancel(self.job)
            self.message.setText("Cancelling…")

    # ------------------------------------------------------------------ internals
    def _converted(self, name: str) -> Path | None:
        entry = registry.PUBLISHED.get(name)
        if entry is None:
            return None
        path = (self.folder / entry.filename).with_suffix(".safetensors")
        return path if path.is_file() else None

    def _load(self) -> None:
        name = self.selected_name()
        path = self._converted(name) if name else None
        if path is not None:
            self.loadRequested.emit(path)

    def _update_buttons(self) -> None:
        name = self.selected_name()
        busy = self.job is not None
        self.download_button.setEnabled(name is not None and not busy)
        self.cancel_button.setEnabled(busy)
        self.load_button.setEnabled(name is not None and self._converted(name) is not None)
        if name is not None:
            e = registry.PUBLISHED[name]
            note = f"  {e.note}." if e.note else ""
            self.detail.setText(f"<b>{e.name}</b>: {e.url}{note}")

    def _finish(self, text: str) -> None:
        self.job = None
        self.message.setText(text)
        self.refresh()

    def _on_started(self, job: int, _kind: str) -> None:
        if job == self.job:
            self.progress.setRange(0, 0)

    def _on_progress(self, job: int, fraction: float, text: str) -> None:
        if job != self.job:
            return
        if fraction < 0:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(1000 * fraction))
        self.message.setText(text)

    def _on_finished(self, job: int, result: object) -> None:
        if job != self.job:
            return
        assert isinstance(result, TaskResult)
        self.progress.setRange(0, 1000)
        self.progress.setValue(1000)
        self._finish(f"Ready: {result.path}")
        self.modelReady.emit(result.path)

    def _on_failed(self, job: int, _kind: str, message: str) -> None:
        if job == self.job:
            self.progress.setRange(0, 1000)
            self.progress.setValue(0)
            self._finish(f"<span style='color:#c0281e'>{_escape(message)}</span>")

    def _on_cancelled(self, job: int, _kind: str, message: str) -> None:
        if job == self.job:
            self.progress.setRange(0, 1000)
            self._finish(f"Cancelled: {message}. Download again to resume.")


def _escape(text: str) -> str:
    import html

    return html.escape(text)
