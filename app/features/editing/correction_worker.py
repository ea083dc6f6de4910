"""The correction thread: superpixels, the magic wand on large images, polygon snapping,
edge refinement and click correction, one job at a time, off the GUI thread.

:class:`CorrectionController` queues :class:`CorrectionJob` s for one
:class:`CorrectionWorker` living in the ``fcn-correct`` QThread (started on the first job).
Interactive kinds (a click's preview, the wand, a snap, and the corrector's accept / reject)
go before heavy ones (superpixels, a refinement); a new superpixels job replaces a queued
one. Cancelling sets a job's flag: the worker stops at its next check (between phases,
between refinement tiles) and the controller drops the result. The worker imports
:mod:`app.features.editing.correction_engine` (and with it torch, scikit-image and the core's
refinement) on its first job. Every result names the thread that computed it.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.workers.jobs import JobQueue
from app.workers.support import describe_error
from app.workers.worker_thread import WorkerThread

THREAD_NAME = "fcn-correct"
HEAVY = ("superpixels", "refine", "warm", "click_prepare")
CONTROL = ("click_accept", "click_reject", "forget")
"""Kinds that keep the worker's corrector in step with the mask: never cancelled."""
TITLES = {
    "warm": "Loading the correction tools",
    "superpixels": "Superpixels",
    "wand": "Magic wand",
    "snap": "Snapping to edges",
    "refine": "Refining with the image's edges",
    "click": "Click correction",
    "click_prepare": "Preparing click correction",
}


@dataclass(eq=False)
class CorrectionJob:
    """One job: its kind, the image it is about and its arguments."""

    id: int
    kind: str
    image_key: Any
    args: dict[str, Any] = field(repr=False)
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)


@dataclass
class JobResult:
    """A job's result, the thread that computed it and how long it took."""

    value: Any
    thread: str
    seconds: float


class CorrectionWorker(QObject):
    """Runs correction jobs in its thread (see the module doc).

    Signals:
        progress(int, float): job id, fraction done.
        finished(int, object): job id, its :class:`JobResult`.
        failed(int, str): job id, a user-facing message.
        cancelled(int): job id.
    """

    progress = Signal(int, float)
    finished = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int)

    def __init__(self) -> None:
        """Nothing loaded until the first job."""
        super().__init__()
        self._clicks: Any | None = None

    @Slot(object)
    def run(self, job: CorrectionJob) -> None:
        """Compute ``job``; emit its result, failure or cancellation."""
        from core.errors import Cancelled

        def check() -> None:
            if job.cancel.is_set():
                raise Cancelled()

        t0 = time.perf_counter()
        try:
            if job.kind not in CONTROL:
                check()
            value = self._compute(job, check)
            if job.kind not in CONTROL:
                check()
        except Cancelled:
            self.cancelled.emit(job.id)
            return
        except Exception as exc:
            traceback.print_exc()
            self.failed.emit(job.id, describe_error(exc, TITLES.get(job.kind, job.kind)))
            return
        self.finished.emit(
            job.id, JobResult(value, QThread.currentThread().objectName(), time.perf_counter() - t0)
        )

    def _compute(self, job: CorrectionJob, check: Callable[[], None]) -> Any:
        from app.features.editing import correction_engine as engine

        a, kind = job.args, job.kind
        if self._clicks is None:
            self._clicks = engine.ClickEngine()
        if kind == "superpixels":
            return engine.compute_superpixels(a["rgb"], a["box"], a["size"])
        if kind == "warm":
            return engine.warm_up()
        if kind == "wand":
            from core.annotation.edge_tools import magic_wand

            return magic_wand(
                a["rgb"], (a["x"], a["y"]), a["tolerance"], contiguous=a["contiguous"]
            )
        if kind == "snap":
            return engine.snap_points(a["rgb"], a["points"])
        if kind == "refine":
            box = a["box"]
            after, changed = engine.refine_box(
                a["rgb"],
                a["labels"],
                a["num_classes"],
                box,
                check=check,
                report=lambda f: self.progress.emit(job.id, f),
            )
            images = engine.preview_images(
                a["rgb"], after, changed, box[:2], a["lut"], a["opacity"]
            )
            return {"box": box, "labels": after, "changed": changed, "images": images}
        if kind == "click":
            out = self._clicks.preview({**a, "image_key": job.image_key}, check)
            out["images"] = engine.preview_images(
                a["rgb"], out["labels"], out["region"], out["box"][:2], a["lut"], a["opacity"]
            )
            return out
        if kind == "click_prepare":
            return self._clicks.prepare({**a, "image_key": job.image_key}, check)
        if kind == "click_accept":
            return self._clicks.accept()
        if kind == "click_reject":
            return self._clicks.reject()
        if kind == "forget":
            return self._clicks.forget()
        raise ValueError(f"unknown correction job {kind!r}")


class CorrectionController(QObject):
    """Queues correction jobs for the worker thread and hands their results on.

    Signals:
        started(object): a job started.
        progress(object, float): the running job and the fraction done.
        finished(object, object): a job and its :class:`JobResult`.
        failed(object, str): a job and a user-facing message.
        cancelled(object): a job that was cancelled (also one dropped from the queue).
    """

    started = Signal(object)
    progress = Signal(object, float)
    finished = Signal(object, object)
    failed = Signal(object, str)
    cancelled = Signal(object)
    _doRun = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        """No thread until the first job."""
        super().__init__(parent)
        self._thread = WorkerThread(
            self,
            THREAD_NAME,
            CorrectionWorker,
            inbound={"run": self._doRun},
            outbound={
                "progress": self._on_progress,
                "finished": self._on_finished,
                "failed": self._on_failed,
                "cancelled": self._on_cancelled,
            },
        )
        self._jobs: JobQueue[CorrectionJob] = JobQueue()
        self._next_id = 0

    @property
    def busy(self) -> bool:
        """Whether a job runs."""
        return self._jobs.busy

    @property
    def running(self) -> bool:
        """Whether the worker's thread was started."""
        return self._thread.running

    def pending(self) -> list[CorrectionJob]:
        """The running job, then the queued ones."""
        return self._jobs.pending()

    def submit(self, kind: str, image_key: Any, **args: Any) -> CorrectionJob:
        """Queue a job (interactive kinds before heavy ones; a new superpixels job replaces
        the queued one)."""
        self._next_id += 1
        job = CorrectionJob(self._next_id, kind, image_key, args)
        if kind == "superpixels":
            for old in [j for j in self._jobs.queue if j.kind == kind]:
                old.cancel.set()
                self.cancelled.emit(old)
            self._jobs.drop(lambda j: j.kind == kind)
        if kind in HEAVY:
            self._jobs.add(job)
        else:
            light = [j for j in self._jobs.queue if j.kind not in HEAVY]
            self._jobs.queue.insert(len(light), job)
        self._pump()
        return job

    def cancel(self, predicate: Callable[[CorrectionJob], bool] | None = None) -> None:
        """Cancel the running job and drop the queued ones ``predicate`` holds for (None:
        all), but those that keep the corrector in step (:data:`CONTROL`)."""

        def hit(job: CorrectionJob) -> bool:
            return job.kind not in CONTROL and (predicate is None or predicate(job))

        dropped = [j for j in self._jobs.queue if hit(j)]
        self._jobs.drop(hit)
        for job in dropped:
            job.cancel.set()
            self.cancelled.emit(job)
        running = self._jobs.running
        if running is not None and hit(running):
            running.cancel.set()

    def shutdown(self, timeout_ms: int = 15000) -> None:
        """Cancel everything and stop the thread."""
        self.cancel()
        self._jobs.drop()
        self._thread.shutdown(timeout_ms)

    def _pump(self) -> None:
        job = self._jobs.start_next()
        if job is None:
            return
        self._thread.ensure()
        self.started.emit(job)
        self._doRun.emit(job)

    def _on_progress(self, job_id: int, fraction: float) -> None:
        job = self._jobs.running_job(job_id)
        if job is not None and not job.cancel.is_set():
            self.progress.emit(job, fraction)

    def _end(self, job_id: int, emit: Callable[[CorrectionJob], None]) -> None:
        job = self._jobs.take(job_id)
        if job is None:
            return
        if job.cancel.is_set():
            self.cancelled.emit(job)
        else:
            emit(job)
        self._pump()

    def _on_finished(self, job_id: int, result: JobResult) -> None:
        self._end(job_id, lambda job: self.finished.emit(job, result))

    def _on_failed(self, job_id: int, message: str) -> None:
        self._end(job_id, lambda job: self.failed.emit(job, message))

    def _on_cancelled(self, job_id: int) -> None:
        self._end(job_id, self.cancelled.emit)
