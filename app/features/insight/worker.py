"""InsightWorker: runs insight jobs one at a time in its QThread, never touching widgets.

Jobs arrive through a queued slot; progress, results, failures and cancellations leave as
signals carrying the job id. The worker imports :mod:`app.features.insight.engine` (torch,
:mod:`core.insight`) on its first job, so nothing of it is loaded before the window is
painted. Every result is stamped with the name of the thread that computed it.
"""

from __future__ import annotations

import traceback
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.features.insight.results import GeometryResult, InsightJob
from app.workers.support import describe_error, lower_thread_priority

THREAD_NAME = "fcn-insight"
"""The object name of the insight thread (results name it in ``thread``)."""
PROGRESS_INTERVAL_S = 0.1

TITLES = {
    "geometry": "Reading the model's layers",
    "streams": "Splitting the outputs into skip streams",
    "class_maps": "Class maps",
    "pixel": "Pixel breakdown",
    "uncertainty": "Estimating uncertainty",
    "fc_conv": "fc layers as convolutions",
    "erf": "Effective receptive fields",
    "score": "Scoring uncertainty",
}
"""What each job kind is called in the status bar and in messages."""


class InsightWorker(QObject):
    """Computes insight jobs with an :class:`~app.features.insight.engine.InsightEngine`.

    Signals:
        progress(int, float, str): job id, fraction done (negative: unknown), what runs.
        finished(int, object): job id and its result (a dataclass of
            :mod:`app.features.insight.results`).
        failed(int, str): job id and a user-facing message.
        cancelled(int): job id.
    """

    progress = Signal(int, float, str)
    finished = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int)

    def __init__(self) -> None:
        """No engine until the first job."""
        super().__init__()
        self._engine: Any | None = None
        self._prioritized = False

    def engine(self) -> Any:
        """The engine (imports torch and the core on first use)."""
        if self._engine is None:
            from app.features.insight.engine import InsightEngine

            self._engine = InsightEngine()
        return self._engine

    @Slot()
    def release(self) -> None:
        """Drop the loaded model and every cached feature."""
        if self._engine is not None:
            self._engine.forget(keep_model=None)

    @Slot(object)
    def run(self, job: InsightJob) -> None:
        """Compute ``job``; emit its result, failure or cancellation."""
        if not self._prioritized:  # as the inference thread: the GUI wins when both compete
            self._prioritized = True
            lower_thread_priority()
        from core.errors import Cancelled

        def check() -> None:
            if job.cancel.is_set():
                raise Cancelled()

        last = [-1.0]

        def report(fraction: float, text: str) -> None:
            import time

            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL_S or fraction >= 1.0:
                last[0] = now
                self.progress.emit(job.id, float(fraction), text)

        try:
            check()
            result = self._compute(job, check, report)
            check()
        except Cancelled:
            self.cancelled.emit(job.id)
            return
        except Exception as exc:
            traceback.print_exc()
            name = job.target.title or job.target.image_key
            self.failed.emit(job.id, describe_error(exc, f"{TITLES.get(job.kind, job.kind)} "
                                                         f"({name})"))
            return
        result.thread = QThread.currentThread().objectName()
        self.finished.emit(job.id, result)

    def _compute(self, job: InsightJob, check: Any, report: Any) -> Any:
        engine, t, p = self.engine(), job.target, job.param
        kind = job.kind
        if kind == "geometry":
            import core.insight.receptive  # noqa: F401  (the GUI thread then finds it loaded)

            return GeometryResult(engine.geometry(t))
        if kind == "streams":
            return engine.streams(t, int(p("cls", 0)), check)
        if kind == "class_maps":
            return engine.class_maps(t, int(p("cls", 0)), check)
        if kind == "pixel":
            return engine.pixel(t, int(p("y")), int(p("x")), check)
        if kind == "uncertainty":
            return engine.uncertainty(t, check, report)
        if kind == "score":
            return engine.score(t, check, report)
        if kind == "fc_conv":
            return engine.fc_conv(t, check, report)
        if kind == "erf":
            return engine.erf(t, int(p("y")), int(p("x")), check)
        raise ValueError(f"unknown insight job kind {kind!r}")
