"""Inference of the model set's checkpoints, in a worker thread of its own.

The current model's predictions come from the window's InferenceController; this runner
predicts with the *other* checkpoints of the set and stores each prediction in the
document under its model's id (with its statistics), so the compare view finds every
pane's output by (image, model id, variant).
"""

from __future__ import annotations

import gc
import threading
import traceback
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from app.common.checkpoints import CheckpointSummary
from app.state.document import ImageDocument
from app.workers.jobs import JobQueue
from app.workers.support import (
    describe_error,
    lower_thread_priority,
    model_id_for,
    throttled_progress,
)
from app.workers.worker_thread import WorkerThread

MAX_SEGMENTERS = 3
"""Models the worker keeps loaded (one per pane at most)."""


@dataclass(frozen=True)
class SetResult:
    """A prediction of one checkpoint and its statistics."""

    model_id: str
    prediction: Any
    stats: Any


class SetWorker(QObject):
    """Loads checkpoints (a few stay loaded) and segments images with them.

    Signals:
        progress(int, float): job id, fraction done.
        finished(int, object): job id and its :class:`SetResult`.
        failed(int, str): job id and a user-facing message.
        cancelled(int): job id.
    """

    progress = Signal(int, float)
    finished = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int)

    def __init__(self) -> None:
        """Hold no model yet."""
        super().__init__()
        self._segmenters: OrderedDict[tuple, Any] = OrderedDict()
        self._prioritized = False

    def _segmenter(self, path: Path, device: str) -> Any:
        from core.inference import Segmenter

        key = (str(path.resolve()), path.stat().st_mtime_ns, device)
        seg = self._segmenters.get(key)
        if seg is None:
            seg = Segmenter.from_checkpoint(path, device=device or "auto")
            self._segmenters[key] = seg
            while len(self._segmenters) > MAX_SEGMENTERS:
                self._segmenters.popitem(last=False)
        self._segmenters.move_to_end(key)
        return seg

    @Slot()
    def release(self) -> None:
        """Drop the loaded models (their memory goes back)."""
        self._segmenters.clear()
        gc.collect()

    @Slot(int, object, str, object, object, object)
    def predict(self, job: int, path: Path, device: str, image: np.ndarray,
                reference: np.ndarray | None, cancel: threading.Event) -> None:
        """Segment ``image`` with the checkpoint at ``path`` (every variant) and summarize it."""
        if not self._prioritized:
            self._prioritized = True
            lower_thread_priority()
        from core.errors import Cancelled

        report = throttled_progress(lambda fraction: self.progress.emit(job, fraction))
        try:
            if cancel.is_set():
                raise Cancelled()
            seg = self._segmenter(path, device)
            pred = seg.predict(image, progress=report, cancel=cancel.is_set)
            if cancel.is_set():
                raise Cancelled()
            from app.common.stats import image_stats

            stats = image_stats(pred, reference, seg.info.num_classes)
            model_id = model_id_for(seg.info, path)
        except Cancelled:
            self.cancelled.emit(job)
            return
        except Exception as exc:
            traceback.print_exc()
            self.failed.emit(job, describe_error(exc, f"Model set: {path.name} failed"))
            return
        self.finished.emit(job, SetResult(model_id, pred, stats))


@dataclass
class SetJob:
    """One checkpoint to run on one document."""

    id: int
    doc: ImageDocument
    member: CheckpointSummary
    device: str
    reference: np.ndarray | None
    cancel: threading.Event = field(default_factory=threading.Event)


class SetRunner(QObject):
    """Queues (document, checkpoint) predictions; one runs at a time in its thread.

    Signals:
        started(object, object): document and the CheckpointSummary being run.
        progress(float): fraction of the running prediction done.
        resultReady(object, str): document and model id (the prediction is already stored).
        failed(str): a user-facing message.
        idChanged(str, str): a checkpoint's file now holds other weights (old id, new id).
        busyChanged(bool): whether a prediction is running.
    """

    started = Signal(object, object)
    progress = Signal(float)
    resultReady = Signal(object, str)
    failed = Signal(str)
    idChanged = Signal(str, str)
    busyChanged = Signal(bool)

    _doPredict = Signal(int, object, str, object, object, object)
    _doRelease = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        """No thread until the first prediction."""
        super().__init__(parent)
        self._thread = WorkerThread(
            self, "fcn-model-set", SetWorker,
            inbound={"predict": self._doPredict, "release": self._doRelease},
            outbound={"progress": self._on_progress, "finished": self._on_finished,
                      "failed": self._on_failed, "cancelled": self._on_cancelled},
        )
        self._jobs: JobQueue[SetJob] = JobQueue()
        self._next_id = 0
        self._failed: set[str] = set()

    @property
    def busy(self) -> bool:
        """Whether a prediction is running."""
        return self._jobs.busy

    def pending(self) -> list[SetJob]:
        """The running and queued jobs."""
        return self._jobs.pending()

    def run(self, doc: ImageDocument, members: Sequence[CheckpointSummary],
            device: str = "auto") -> int:
        """Predict ``doc`` with each of ``members`` that has no prediction yet.

        Queued jobs for other documents are dropped and a running one is cancelled. A
        checkpoint that failed is skipped until :meth:`reset_failures`. Returns the number of
        predictions queued or already running for ``doc``.
        """
        wanted = [m for m in members
                  if doc.prediction(m.model_id) is None and m.model_id not in self._failed]
        ids = {m.model_id for m in wanted}
        run = self._jobs.running
        if run is not None and (run.doc is not doc or run.member.model_id not in ids):
            run.cancel.set()
        running_id = run.member.model_id if run is not None and not run.cancel.is_set() else None
        self._jobs.drop()
        for m in wanted:
            if m.model_id != running_id:
                self._next_id += 1
                self._jobs.add(SetJob(self._next_id, doc, m, device, doc.reference))
        self._pump()
        return len(wanted)

    def reset_failures(self) -> None:
        """Try checkpoints that failed again on the next :meth:`run`."""
        self._failed.clear()

    def cancel(self) -> bool:
        """Cancel the running and the queued predictions; True if there was one."""
        had = self._jobs.drop()
        if self._jobs.running is not None:
            self._jobs.running.cancel.set()
            return True
        return had

    def release_models(self) -> None:
        """Let the worker drop its loaded models (after it finishes what is queued)."""
        self.cancel()
        if self._thread.running:
            self._doRelease.emit()

    def shutdown(self, timeout_ms: int = 15000) -> None:
        """Cancel everything and stop the thread."""
        self.cancel()
        self._thread.shutdown(timeout_ms)

    def _pump(self) -> None:
        job = self._jobs.start_next()
        if job is None:
            return
        self._thread.ensure()
        self.busyChanged.emit(True)
        self.started.emit(job.doc, job.member)
        self._doPredict.emit(job.id, job.member.path, job.device, job.doc.image, job.reference,
                             job.cancel)

    def _done(self) -> None:
        self.busyChanged.emit(False)
        self._pump()

    def _on_progress(self, job_id: int, fraction: float) -> None:
        if self._jobs.is_running(job_id):
            self.progress.emit(fraction)

    def _on_finished(self, job_id: int, result: object) -> None:
        job = self._jobs.take(job_id)
        if job is None:
            return
        assert isinstance(result, SetResult)
        fresh = job.doc.reference is job.reference
        derived = {("stats", result.model_id): result.stats} if fresh else {}
        job.doc.set_prediction(result.model_id, result.prediction, derived)
        if result.model_id != job.member.model_id:
            self.idChanged.emit(job.member.model_id, result.model_id)
        self.resultReady.emit(job.doc, result.model_id)
        self._done()

    def _on_failed(self, job_id: int, message: str) -> None:
        job = self._jobs.take(job_id)
        if job is None:
            return
        self._failed.add(job.member.model_id)  # not retried until reset_failures()
        self.failed.emit(message)
        self._done()

    def _on_cancelled(self, job_id: int) -> None:
        if self._jobs.take(job_id) is not None:
            self._done()
