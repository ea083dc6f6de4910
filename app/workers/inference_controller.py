"""InferenceController: the GUI-side owner of the worker thread and its job queue.

A prediction's preview and tiles land in the document as a partial result
(``ImageDocument.set_preview`` / ``add_tiles``) before the whole prediction is stored; a
cancelled one keeps the tiles that landed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from app.state.document import ImageDocument
from app.state.model import LoadedModel, ModelState
from app.workers.inference import InferenceWorker, PredictResult
from app.workers.jobs import JobQueue
from app.workers.worker_thread import WorkerThread

NO_MODEL = "No model is loaded: open a checkpoint (Model > Open…)"


@dataclass
class Job:
    """A queued or running piece of work for the worker."""

    id: int
    kind: str  # "load" or "predict"
    doc: ImageDocument | None = None
    path: Path | None = None
    device: str = "auto"
    reference: np.ndarray | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    model_id: str | None = None  # of the model that runs a prediction (set when it starts)
    tiles: int = 0  # tiles landed so far


class InferenceController(QObject):
    """Queues model loads and predictions; one runs at a time in a worker thread.

    A new prediction request replaces a pending one and cancels a running one, so the
    result that arrives is always for the image the user asked for last. What it learns
    about the model (loaded, failed, its runtime) it writes to :attr:`models`, the
    :class:`~app.state.model.ModelState` that owns those facts.

    Signals:
        modelLoading(str): loading started (the checkpoint path, '' for the default).
        modelLoaded(object): a :class:`LoadedModel`.
        modelFailed(str): loading failed; the message is user-facing.
        devicesFound(object): ``[(id, name), ...]``.
        deviceProblem(str): why a GPU that seems present is not used.
        started(object): a prediction started for that document.
        progress(float): fraction of the running prediction done.
        previewReady(object, object): document, the prediction of its downscaled copy
            (already in the document's partial result).
        tilesLanded(object, object): document, the boxes ``(top, left, bottom, right)``
            of the tiles that landed (already in the document's partial result).
        resultReady(object, object): document, prediction (already stored in the document).
        runtimeChanged(str, object): the inference backend in use and why speed-ups were
            left out (a tuple of notes), when they differ from the previous prediction's.
        failed(str): a prediction failed; the message is user-facing.
        cancelled(object): a prediction of that document was cancelled.
        busyChanged(bool): whether a job is running.
    """

    modelLoading = Signal(str)
    modelLoaded = Signal(object)
    modelFailed = Signal(str)
    devicesFound = Signal(object)
    deviceProblem = Signal(str)
    started = Signal(object)
    progress = Signal(float)
    previewReady = Signal(object, object)
    tilesLanded = Signal(object, object)
    resultReady = Signal(object, object)
    runtimeChanged = Signal(str, object)
    failed = Signal(str)
    cancelled = Signal(object)
    busyChanged = Signal(bool)

    _doLoad = Signal(int, object, str, object)
    _doPredict = Signal(int, object, object, object, object)

    def __init__(self, parent: QObject | None = None, models: ModelState | None = None,
                 tile_size: int | None = None) -> None:
        """Create no thread until the first job; write to ``models`` (default: its own).

        ``tile_size``: rows per band of the models loaded from now on (None: measured per
        model and device; tests and benchmarks set it to get many tiles).
        """
        super().__init__(parent)
        self.models = models if models is not None else ModelState(self)
        self.tile_size = tile_size
        self._thread = WorkerThread(
            self, "fcn-inference", InferenceWorker,
            inbound={"load_model": self._doLoad, "predict": self._doPredict},
            outbound={"progress": self._on_progress, "preview": self._on_preview,
                      "tilesLanded": self._on_tiles, "finished": self._on_finished,
                      "failed": self._on_failed, "cancelled": self._on_cancelled,
                      "devicesFound": self.devicesFound,
                      "deviceProblem": self.deviceProblem},
        )
        self._jobs: JobQueue[Job] = JobQueue()
        self._next_id = 0

    # ------------------------------------------------------------------ public API
    @property
    def model(self) -> LoadedModel | None:
        """The loaded model (the model state's)."""
        return self.models.loaded

    @property
    def runtime(self) -> tuple[str, tuple[str, ...]]:
        """The inference backend of the last prediction and its notes (the model state's)."""
        return self.models.runtime, self.models.runtime_notes

    @property
    def busy(self) -> bool:
        """Whether a job is running."""
        return self._jobs.busy

    @property
    def loading(self) -> bool:
        """Whether a model load is running or queued."""
        return any(j.kind == "load" for j in self._jobs.pending())

    def running_document(self) -> ImageDocument | None:
        """The document being segmented now, if any."""
        job = self._jobs.running
        return job.doc if job is not None and job.kind == "predict" else None

    def load_model(self, path: str | Path | None = None, device: str = "auto") -> None:
        """Load a checkpoint (None: the default model) on a device; cancels a prediction."""
        self._jobs.drop(_is_load)
        self._cancel_running("predict")
        job = self._job("load", path=Path(path) if path is not None else None, device=device)
        self._jobs.add(job, first=True)
        self.models.set_loading(path)
        self.modelLoading.emit(str(path or ""))
        self._pump()

    def run(self, doc: ImageDocument) -> None:
        """Segment ``doc`` with the current (or the loading) model."""
        self._jobs.drop(_is_predict)
        self._cancel_running("predict")
        self._jobs.add(self._job("predict", doc=doc, reference=doc.reference))
        self._pump()

    def cancel(self) -> bool:
        """Cancel the running and the pending predictions; True if there was one."""
        had = self._jobs.drop(_is_predict)
        return self._cancel_running("predict") or had

    def shutdown(self, timeout_ms: int = 15000) -> None:
        """Cancel everything and stop the thread (waits for a running job to return)."""
        self._jobs.drop()
        self._cancel_running("predict")
        self._thread.shutdown(timeout_ms)

    # ------------------------------------------------------------------ internals
    def _job(self, kind: str, **kw: Any) -> Job:
        self._next_id += 1
        return Job(self._next_id, kind, **kw)

    def _cancel_running(self, kind: str) -> bool:
        job = self._jobs.running
        if job is not None and job.kind == kind:
            job.cancel.set()
            return True
        return False

    def _pump(self) -> None:
        # a prediction with no model to run it fails at once, and the next job is tried
        while (job := self._jobs.peek()) is not None and self._needs_model(job):
            self._jobs.skip_next()
            self.failed.emit(NO_MODEL)
        job = self._jobs.start_next()
        if job is None:
            return
        self._thread.ensure()
        self.busyChanged.emit(True)
        if job.kind == "load":
            self._doLoad.emit(job.id, job.path, job.device, self.tile_size)
        else:
            doc = job.doc
            assert doc is not None
            job.model_id = self.model.model_id if self.model is not None else None
            self.started.emit(doc)
            # the region in view when the prediction itself starts (after the preview)
            self._doPredict.emit(job.id, doc.image, job.reference, job.cancel,
                                 lambda: doc.view_region)

    def _needs_model(self, job: Job) -> bool:
        return job.kind == "predict" and self.model is None

    def _done(self) -> None:
        self.busyChanged.emit(False)
        self._pump()

    def _on_progress(self, job_id: int, fraction: float) -> None:
        job = self._jobs.running_job(job_id)
        if job is not None and job.kind == "predict":
            self.progress.emit(fraction)

    def _on_preview(self, job_id: int, preview: object) -> None:
        job = self._jobs.running_job(job_id)
        if job is None or job.doc is None or job.model_id is None:
            return
        job.doc.set_preview(job.model_id, preview)
        self.previewReady.emit(job.doc, preview)

    def _on_tiles(self, job_id: int, prediction: object, boxes: object) -> None:
        job = self._jobs.running_job(job_id)
        if job is None or job.doc is None or job.model_id is None:
            return
        job.tiles += len(boxes)  # type: ignore[arg-type]
        job.doc.add_tiles(job.model_id, prediction, list(boxes))  # type: ignore[call-overload]
        self.tilesLanded.emit(job.doc, boxes)

    def _on_finished(self, job_id: int, result: object) -> None:
        job = self._jobs.take(job_id)
        if job is None:
            return
        if job.kind == "load":
            assert isinstance(result, LoadedModel)
            self.models.set_loaded(result)  # its runtime is known after its first prediction
            self.modelLoaded.emit(result)
        elif self.model is not None and job.doc is not None:
            assert isinstance(result, PredictResult)
            model_id = self.model.model_id
            fresh = job.doc.reference is job.reference  # else the stats are recomputed
            derived = {("stats", model_id): result.stats} if fresh else {}
            job.doc.set_prediction(model_id, result.prediction, derived)
            if self.models.set_runtime(result.runtime, result.runtime_notes):
                self.runtimeChanged.emit(result.runtime, tuple(result.runtime_notes))
            self.resultReady.emit(job.doc, result.prediction)
        self._done()

    def _on_failed(self, job_id: int, message: str) -> None:
        job = self._jobs.take(job_id)
        if job is None:
            return
        if job.kind == "load":
            if self.model is None:  # queued predictions cannot run: the message says why
                self._jobs.drop(_is_predict)
            self.models.set_failed(message)
            self.modelFailed.emit(message)
        else:
            if job.doc is not None and job.model_id is not None:
                job.doc.stop_partial(job.model_id)
            self.failed.emit(message)
        self._done()

    def _on_cancelled(self, job_id: int) -> None:
        job = self._jobs.take(job_id)
        if job is not None:
            if job.doc is not None and job.model_id is not None:
                job.doc.stop_partial(job.model_id)  # what landed stays
            self.cancelled.emit(job.doc)
            self._done()


def _is_load(job: Job) -> bool:
    return job.kind == "load"


def _is_predict(job: Job) -> bool:
    return job.kind == "predict"
