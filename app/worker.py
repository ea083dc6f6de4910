"""The inference worker: a QObject living in a QThread; it loads models and segments images.

It imports torch and :mod:`core.inference` on its first job, so the window never waits for
them. It never touches widgets or documents: inputs arrive as arguments of queued slots,
results leave as signals.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot


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


@dataclass(frozen=True)
class LoadedModel:
    """What the GUI needs to know about the model the worker holds."""

    info: Any
    device: str
    path: Path
    model_id: str


def describe_error(exc: BaseException, context: str) -> str:
    """A one-paragraph, user-facing message for an exception raised by the core or torch."""
    from core.errors import FCNStudioError

    name = type(exc).__name__
    text = (str(exc).strip().splitlines() or [name])[0]
    if isinstance(exc, MemoryError) or "OutOfMemory" in name or "out of memory" in text.lower():
        return (
            f"{context}: out of memory ({text}). Pick the CPU in the Device menu or open a "
            "smaller image."
        )
    if isinstance(exc, FCNStudioError):
        return f"{context}: {text}"
    return f"{context}: {name}: {text}"


def model_id_for(info: Any, path: Path) -> str:
    """The key a model's predictions are stored under: its weights id, else path and mtime."""
    if getattr(info, "id", ""):
        return str(info.id)
    try:
        return f"{path.resolve()}@{path.stat().st_mtime_ns}"
    except OSError:
        return str(path)


def throttled_progress(emit: Callable[[float], None]) -> Callable[[float], None]:
    """Wrap ``emit`` to pass a fraction on only at 1.0, after 2 % more or after 0.1 s.

    Keeps a fast prediction from flooding the GUI thread with queued progress signals.
    """
    last = [-1.0, 0.0]

    def report(fraction: float) -> None:
        now = time.monotonic()
        if fraction >= 1.0 or fraction - last[0] >= 0.02 or now - last[1] > 0.1:
            last[0], last[1] = fraction, now
            emit(float(fraction))

    return report


NICE_ENV = "FCN_STUDIO_WORKER_NICE"
DEFAULT_NICE = 5


def lower_thread_priority(increment: int | None = None) -> int | None:
    """Raise the calling thread's nice value (Linux); return the new value, None if unchanged.

    Threads this thread starts later (torch's OpenMP pool) inherit it, so inference yields
    the CPU to the GUI thread when both want it and runs at full speed otherwise.
    """
    if increment is None:
        try:
            increment = int(os.environ.get(NICE_ENV, DEFAULT_NICE))
        except ValueError:
            increment = DEFAULT_NICE
    if increment <= 0 or not sys.platform.startswith("linux"):
        return None
    try:
        tid = threading.get_native_id()
        nice = min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment)
        os.setpriority(os.PRIO_PROCESS, tid, nice)
    except (OSError, AttributeError):
        return None
    return nice


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
            from app.stats import image_stats

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
