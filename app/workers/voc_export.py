"""Writing a project as a VOC dataset in a worker thread (File > Export VOC Dataset…)."""

from __future__ import annotations

import traceback
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from app.workers.worker_thread import WorkerThread


class ExportWorker(QObject):
    """Writes a project as a VOC dataset in a worker thread (it imports torch's data code).

    Signals:
        progress(int, int): images done, total.
        finished(str): the dataset folder.
        failed(str): a user-facing message.
    """

    progress = Signal(int, int)
    finished = Signal(str)
    failed = Signal(str)

    @Slot(object, str, bool)
    def export(self, project: Any, out: str, corrected_only: bool) -> None:
        """Run :meth:`Project.export_voc`."""
        try:
            root = project.export_voc(out, corrected_only=corrected_only,
                                      progress=lambda d, n: self.progress.emit(d, n))
        except Exception as exc:
            traceback.print_exc()
            self.failed.emit(f"VOC export failed: {exc}")
            return
        self.finished.emit(str(root))


class VocExporter(QObject):
    """Owns the export thread; one export at a time.

    Signals:
        finished(str), failed(str): forwarded from the worker.
    """

    finished = Signal(str)
    failed = Signal(str)
    _start = Signal(object, str, bool)

    def __init__(self, parent: QObject | None = None) -> None:
        """Create the thread on the first export."""
        super().__init__(parent)
        self._thread = WorkerThread(
            self, "fcn-export", ExportWorker,
            inbound={"export": self._start},
            outbound={"finished": self._done, "failed": self._fail},
        )
        self.busy = False

    def export(self, project: Any, out: str, corrected_only: bool = False) -> bool:
        """Start exporting; False when an export is already running."""
        if self.busy:
            return False
        self._thread.ensure()
        self.busy = True
        self._start.emit(project, out, corrected_only)
        return True

    def _done(self, root: str) -> None:
        self.busy = False
        self.finished.emit(root)

    def _fail(self, message: str) -> None:
        self.busy = False
        self.failed.emit(message)

    def shutdown(self) -> None:
        """Stop the thread (waits for a running export)."""
        self._thread.shutdown(30000)
