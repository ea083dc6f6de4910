"""BatchRunner: the GUI-side owner of the batch worker's thread; one batch at a time."""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal

from app.workers.batch import BatchRequest, BatchSummary, BatchWorker
from app.workers.worker_thread import WorkerThread


class BatchRunner(QObject):
    """Starts batches in a :class:`BatchWorker`'s thread (started on first use), cancels them.

    Replies of a batch that is no longer the running one are ignored.

    Attributes:
        worker_thread: The :class:`WorkerThread` of the :class:`BatchWorker`.
        request: The last batch's :class:`BatchRequest`.

    Signals:
        started(object): the :class:`BatchRequest` that started.
        progress(int, int, str, float): images done, total, the image being segmented and
            the fraction of it done.
        imageFailed(str, str): an image's name and a user-facing message (the batch goes on).
        finished(object): the :class:`BatchSummary` of a batch that ran to its end.
        failed(str): a batch that could not run (the model); a user-facing message.
        cancelled(object): the :class:`BatchSummary` of a cancelled batch.
        busyChanged(bool): whether a batch runs.
    """

    started = Signal(object)
    progress = Signal(int, int, str, float)
    imageFailed = Signal(str, str)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal(object)
    busyChanged = Signal(bool)

    _do = Signal(int, object, object)

    def __init__(self, parent: QObject | None = None) -> None:
        """No thread until the first batch."""
        super().__init__(parent)
        self.worker_thread: WorkerThread[BatchWorker] = WorkerThread(
            self, "fcn-batch", BatchWorker,
            inbound={"run": self._do},
            outbound={"progress": self._on_progress, "imageFailed": self._on_image_failed,
                      "finished": self._on_finished, "failed": self._on_failed,
                      "cancelled": self._on_cancelled},
        )
        self._job = 0
        self._running: int | None = None
        self._cancel = threading.Event()
        self.request: BatchRequest | None = None

    @property
    def busy(self) -> bool:
        """Whether a batch runs."""
        return self._running is not None

    def start(self, request: BatchRequest) -> bool:
        """Start a batch; False (nothing started) while another one runs."""
        if self.busy:
            return False
        self._job += 1
        self._running = self._job
        self._cancel = threading.Event()
        self.request = request
        self.worker_thread.ensure()
        self.busyChanged.emit(True)
        self.started.emit(request)
        self._do.emit(self._job, request, self._cancel)
        return True

    def cancel(self) -> bool:
        """Ask the running batch to stop (between images, or between an image's tiles).

        Thread-safe. Returns:
            Whether a batch was running.
        """
        if self._running is None:
            return False
        self._cancel.set()
        return True

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Cancel the batch and stop the thread (waits for the image being segmented)."""
        self.cancel()
        self.worker_thread.shutdown(timeout_ms)
        if self._running is not None:
            self._running = None
            self.busyChanged.emit(False)

    def _take(self, job: int) -> bool:
        if job != self._running:
            return False
        self._running = None
        self.busyChanged.emit(False)
        return True

    def _on_progress(self, job: int, done: int, total: int, name: str, fraction: float) -> None:
        if job == self._running:
            self.progress.emit(done, total, name, fraction)

    def _on_image_failed(self, job: int, name: str, message: str) -> None:
        if job == self._running:
            self.imageFailed.emit(name, message)

    def _on_finished(self, job: int, summary: BatchSummary) -> None:
        if self._take(job):
            self.finished.emit(summary)

    def _on_failed(self, job: int, message: str) -> None:
        if self._take(job):
            self.failed.emit(message)

    def _on_cancelled(self, job: int, summary: BatchSummary) -> None:
        if self._take(job):
            self.cancelled.emit(summary)
