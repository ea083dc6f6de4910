"""The inference worker: a QObject living in a QThread; it loads models and segments images.

It imports torch and :mod:`core.inference` on its first job, so the window never waits for
them. It never touches widgets or documents: inputs arrive as arguments of queued slots,
results leave as signals.
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from app.state.model import LoadedModel
from app.workers.support import (
    describe_error,
    lower_thread_priority,
    model_id_for,
    throttled_progress,
)


@dataclass(frozen=True)
class PredictResult:
    """A prediction and its statistics (computed here, off the GUI thread), and what ran it.

    Attributes:
        runtime: The inference backend in use, e.g. "torch (fp32, channels_last, ...)".
        runtime_notes: Why requested speed-ups were left out or fell back (to eager).
    """

    prediction: Any
    stats: Any
    runtime: str = ""
    runtime_notes: tuple[str, ...] = ()


class InferenceWorker(QObject):
    """Runs jobs one at a time in its thread.

    Signals:
        progress(int, float): job id, fraction done.
        finished(int, object): job id and its result (LoadedModel or PredictResult).
        failed(int, str): job id and a user-facing message.
        cancelled(int): job id of a cancelled prediction.
        devicesFound(object): ``[(id, name), ...]`` from ``core.devices.available_devices``.
        deviceProblem(str): why a GPU that seems present is not used (``gpu_hint``).
    """

    progress = Signal(int, float)
    finished = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int)
    devicesFound = Signal(object)
    deviceProblem = Signal(str)

    def __init__(self) -> None:
        """Hold no model yet."""
        super().__init__()
        self._segmenter: Any | None = None
        self._devices_sent = False
        self._prioritized = False

    @Slot(int, object, str)
    def load_model(self, job: int, path: object, device: str) -> None:
        """Load a checkpoint (None: the default model) on ``device`` ("auto", "cpu", "cuda:N")."""
        if not self._prioritized:
            self._prioritized = True
            lower_thread_priority()
        try:
            self._send_devices()
            from core.inference import Segmenter
            from core.paths import default_model_path

            ckpt = Path(path) if path is not None else default_model_path()
            seg = Segmenter.from_checkpoint(
                Path(path) if path is not None else None, device=device or "auto"
            )
        except Exception as exc:
            self.failed.emit(job, describe_error(exc, "Could not load the model"))
            return
        self._segmenter = seg
        loaded = LoadedModel(seg.info, str(seg.device), ckpt, model_id_for(seg.info, ckpt))
        self.finished.emit(job, loaded)

    @Slot(int, object, object, object)
    def predict(
        self, job: int, image: np.ndarray, reference: np.ndarray | None, cancel: threading.Event
    ) -> None:
        """Segment ``image`` with every variant and summarize it (metrics against ``reference``).

        ``cancel`` is polled by the core between tiles.
        """
        if self._segmenter is None:
            self.failed.emit(job, "No model is loaded: open a checkpoint (Model > Open…)")
            return
        from core.errors import Cancelled

        report = throttled_progress(lambda fraction: self.progress.emit(job, fraction))
        try:
            if cancel.is_set():
                raise Cancelled()
            pred = self._segmenter.predict(image, progress=report, cancel=cancel.is_set)
            if cancel.is_set():  # the core polls between tiles: a cancel may come after the last
                raise Cancelled()
            from app.common.stats import image_stats

            stats = image_stats(pred, reference, self._segmenter.info.num_classes)
        except Cancelled:
            self.cancelled.emit(job)
            return
        except Exception as exc:
            traceback.print_exc()
            self.failed.emit(job, describe_error(exc, "Segmentation failed"))
            return
        backend = self._segmenter.backend
        self.finished.emit(job, PredictResult(pred, stats, backend.description,
                                              tuple(self._segmenter.backend_notes)))

    def _send_devices(self) -> None:
        if self._devices_sent:
            return
        try:
            from core.devices import available_devices, gpu_hint

            self.devicesFound.emit(list(available_devices()))
            self._devices_sent = True
            hint = gpu_hint()
            if hint:
                self.deviceProblem.emit(hint)
        except Exception:  # a missing or broken device module must not stop the model
            traceback.print_exc()
