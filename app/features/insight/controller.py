"""InsightController: the insight jobs, one running at a time in the insight thread.

Jobs are keyed by kind, image, model id and parameters: asking again for a job that is
queued or running returns it instead of a second one. Interactive kinds (a class's maps, a
pixel's breakdown, the effective fields, the model's geometry) go before the heavy ones and
a newer one replaces a queued one of its kind. Cancelling sets the job's flag (the worker
stops at its next check and its result is ignored) and drops queued jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.features.insight.results import INTERACTIVE, KINDS, InsightJob, Target
from app.features.insight.worker import THREAD_NAME, InsightWorker
from app.workers.jobs import JobQueue
from app.workers.worker_thread import WorkerThread


class InsightController(QObject):
    """Queues insight jobs for the worker thread and hands their results on.

    Signals:
        started(object): a job started (the :class:`InsightJob`).
        progress(object, float, str): the running job, fraction (negative: unknown), text.
        resultReady(object, object): a job and its result.
        failed(object, str): a job and a user-facing message.
        cancelled(object): a job that was cancelled.
        busyChanged(bool): whether a job runs.
    """

    started = Signal(object)
    progress = Signal(object, float, str)
    resultReady = Signal(object, object)
    failed = Signal(object, str)
    cancelled = Signal(object)
    busyChanged = Signal(bool)
    _doRun = Signal(object)
    _doRelease = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        """No thread until the first job."""
        super().__init__(parent)
        self._thread = WorkerThread(
            self, THREAD_NAME, InsightWorker,
            inbound={"run": self._doRun, "release": self._doRelease},
            outbound={"progress": self._on_progress, "finished": self._on_finished,
                      "failed": self._on_failed, "cancelled": self._on_cancelled},
        )
        self._jobs: JobQueue[InsightJob] = JobQueue()
        self._next_id = 0

    # ------------------------------------------------------------------ queries
    @property
    def busy(self) -> bool:
        """Whether a job runs."""
        return self._jobs.busy

    @property
    def running(self) -> InsightJob | None:
        """The running job."""
        return self._jobs.running

    def pending(self) -> list[InsightJob]:
        """The running job, then the queued ones."""
        return self._jobs.pending()

    def find(self, kind: str, target: Target, params: tuple = ()) -> InsightJob | None:
        """The queued or running (not cancelled) job with these key parts, if any."""
        key = (kind, target.image_key, target.model_id, params)
        return next((j for j in self._jobs.pending()
                     if j.key == key and not j.cancel.is_set()), None)

    # ------------------------------------------------------------------ commands
    def submit(self, kind: str, target: Target, params: tuple = ()) -> InsightJob:
        """Queue a job (or return the equal one already queued or running)."""
        if kind not in KINDS:
            raise ValueError(f"unknown insight job kind {kind!r}")
        found = self.find(kind, target, params)
        if found is not None:
            return found
        self._next_id += 1
        job = InsightJob(self._next_id, kind, target, tuple(params))
        if kind in INTERACTIVE:
            self._jobs.drop(lambda j: j.kind == kind)
            waiting = [j for j in self._jobs.queue if j.kind in INTERACTIVE]
            self._jobs.queue.insert(len(waiting), job)
        else:
            self._jobs.add(job)
        self._pump()
        return job

    def cancel(self, predicate: Callable[[InsightJob], bool] | None = None) -> int:
        """Cancel the running job and drop the queued ones ``predicate`` holds for (None:
        all); return how many."""
        hit = (lambda _j: True) if predicate is None else predicate
        queued = [j for j in self._jobs.queue if hit(j)]
        self._jobs.drop(hit)
        for job in queued:
            job.cancel.set()
        running = self._jobs.running
        if running is not None and hit(running) and not running.cancel.is_set():
            running.cancel.set()
            return len(queued) + 1
        return len(queued)

    def release(self) -> None:
        """Cancel everything and let the worker drop its model and features."""
        self.cancel()
        if self._thread.running:
            self._doRelease.emit()

    def shutdown(self, timeout_ms: int = 15000) -> None:
        """Cancel everything and stop the thread."""
        self.cancel()
        self._thread.shutdown(timeout_ms)

    @property
    def worker(self) -> InsightWorker | None:
        """The worker while its thread runs (tests)."""
        return self._thread.worker

    # ------------------------------------------------------------------ worker replies
    def _pump(self) -> None:
        job = self._jobs.start_next()
        if job is None:
            return
        self._thread.ensure()
        self.busyChanged.emit(True)
        self.started.emit(job)
        self._doRun.emit(job)

    def _done(self) -> None:
        self.busyChanged.emit(False)
        self._pump()

    def _on_progress(self, job_id: int, fraction: float, text: str) -> None:
        job = self._jobs.running_job(job_id)
        if job is not None and not job.cancel.is_set():
            self.progress.emit(job, fraction, text)

    def _on_finished(self, job_id: int, result: Any) -> None:
        job = self._jobs.take(job_id)
        if job is None:
            return
        if job.cancel.is_set():
            self.cancelled.emit(job)
        else:
            self.resultReady.emit(job, result)
        self._done()

    def _on_failed(self, job_id: int, message: str) -> None:
        job = self._jobs.take(job_id)
        if job is None:
            return
        if job.cancel.is_set():
            self.cancelled.emit(job)
        else:
            self.failed.emit(job, message)
        self._done()

    def _on_cancelled(self, job_id: int) -> None:
        job = self._jobs.take(job_id)
        if job is not None:
            self.cancelled.emit(job)
            self._done()
