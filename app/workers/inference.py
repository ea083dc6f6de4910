"""The inference worker: a QObject living in a QThread; it loads models and segments images.

It imports torch and :mod:`core.inference` on its first job, so the window never waits for
them. It never touches widgets or documents: inputs arrive as arguments of queued slots,
results leave as signals.

A large image is segmented progressively: first a preview (the model on a copy downscaled
to 448 pixels, about 0.1 s), then the streamed prediction, whose tiles are sent as they
finish (at most :data:`LANDING_RATE` batches a second), the region in view first.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
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

PREVIEW_PIXELS = 1 << 20
"""Images of more pixels get a preview before their prediction."""
LANDING_RATE = 20.0
"""At most this many batches of landed tiles a second."""

Box = tuple[int, int, int, int]
FirstRegion = Callable[[], Box | None] | Box | None
"""The region to finish first ``(top, left, bottom, right)``, or what reads it when the
prediction starts."""


class Landing:
    """Collects the tiles that finish and passes them on in batches, at most ``rate`` a
    second: ``emit(prediction, boxes)``."""

    def __init__(self, emit: Callable[[Any, list[Box]], None], rate: float = LANDING_RATE
                 ) -> None:
        """Nothing landed yet."""
        self.emit = emit
        self.interval = 1.0 / rate
        self.prediction: Any | None = None
        self.boxes: list[Box] = []
        self.count = 0
        self._last = -1e9

    def __call__(self, prediction: Any, region: Any) -> None:
        """``core.inference``'s tile callback."""
        self.prediction = prediction
        self.boxes.append((int(region.top), int(region.left), int(region.bottom),
                           int(region.right)))
        self.count += 1
        self.poll()

    def poll(self) -> None:
        """Pass the collected tiles on if the last batch is old enough (called after each
        band too, so a tile never waits for the next one)."""
        if self.boxes and time.monotonic() - self._last >= self.interval:
            self.flush()

    def flush(self) -> None:
        """Pass the collected tiles on now."""
        if self.boxes:
            boxes, self.boxes = self.boxes, []
            self._last = time.monotonic()
            self.emit(self.prediction, boxes)


@dataclass(frozen=True)
class PredictResult:
    """A prediction and its statistics (computed here, off the GUI thread), and what ran it.

    Attributes:
        runtime: How predictions run, e.g. "streamed bands (fp32, channels_last) on cpu".
        runtime_notes: What of the requested runtime predictions do not use.
    """

    prediction: Any
    stats: Any
    runtime: str = ""
    runtime_notes: tuple[str, ...] = ()


class InferenceWorker(QObject):
    """Runs jobs one at a time in its thread.

    Attributes:
        tile_size: Rows per band of the models it loads (None: measured; tests and
            benchmarks set it to get many tiles).

    Signals:
        progress(int, float): job id, fraction done.
        preview(int, object): job id and the prediction of a downscaled copy of the image.
        tilesLanded(int, object, object): job id, the streamed prediction (final in the
            tiles landed so far) and the tiles that landed since the last batch, as
            ``(top, left, bottom, right)`` boxes.
        finished(int, object): job id and its result (LoadedModel or PredictResult).
        failed(int, str): job id and a user-facing message.
        cancelled(int): job id of a cancelled prediction.
        devicesFound(object): ``[(id, name), ...]`` from
            ``core.inference.devices.available_devices``.
        deviceProblem(str): why a GPU that seems present is not used (``gpu_hint``).
    """

    progress = Signal(int, float)
    preview = Signal(int, object)
    tilesLanded = Signal(int, object, object)
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
        self.tile_size: int | None = None

    @Slot(int, object, str, object)
    def load_model(self, job: int, path: object, device: str, tile_size: object = None) -> None:
        """Load a checkpoint (None: the default model) on ``device`` ("auto", "cpu",
        "cuda:N"), streaming ``tile_size`` rows per band (None: measured)."""
        if not self._prioritized:
            self._prioritized = True
            lower_thread_priority()
        try:
            self._send_devices()
            from core.inference import Segmenter
            from core.paths import default_model_path

            ckpt = Path(path) if path is not None else default_model_path()
            self.tile_size = int(tile_size) if tile_size else None  # type: ignore[arg-type]
            seg = Segmenter.from_checkpoint(
                Path(path) if path is not None else None, device=device or "auto",
                tile_size=self.tile_size,
            )
        except Exception as exc:
            self.failed.emit(job, describe_error(exc, "Could not load the model"))
            return
        self._segmenter = seg
        loaded = LoadedModel(seg.info, str(seg.device), ckpt, model_id_for(seg.info, ckpt))
        self.finished.emit(job, loaded)

    @Slot(int, object, object, object, object)
    def predict(
        self, job: int, image: np.ndarray, reference: np.ndarray | None,
        cancel: threading.Event, first: FirstRegion = None,
    ) -> None:
        """Segment ``image`` with every variant and summarize it (metrics against ``reference``).

        A large image gets a preview first; the tiles meeting ``first`` are finished first
        and every tile is sent as it lands. ``cancel`` is polled by the core between tiles.
        """
        if self._segmenter is None:
            self.failed.emit(job, "No model is loaded: open a checkpoint (Model > Open…)")
            return
        from core.errors import Cancelled
        from core.inference import Region

        progress = throttled_progress(lambda fraction: self.progress.emit(job, fraction))
        landing = Landing(lambda pred, boxes: self.tilesLanded.emit(job, pred, boxes))

        def report(fraction: float) -> None:
            progress(fraction)
            landing.poll()

        try:
            if cancel.is_set():
                raise Cancelled()
            if image.shape[0] * image.shape[1] > PREVIEW_PIXELS:
                self.preview.emit(job, self._segmenter.preview(image))
                if cancel.is_set():
                    raise Cancelled()
            box = first() if callable(first) else first
            region = Region(*box) if box is not None else None
            try:
                pred = self._segmenter.predict(image, progress=report, cancel=cancel.is_set,
                                               on_tile=landing, first=region)
            finally:
                landing.flush()
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
        seg = self._segmenter
        self.finished.emit(job, PredictResult(pred, stats, f"{seg.description} on {seg.device}",
                                              tuple(seg.notes)))

    def _send_devices(self) -> None:
        if self._devices_sent:
            return
        try:
            from core.inference.devices import available_devices, gpu_hint

            self.devicesFound.emit(list(available_devices()))
            self._devices_sent = True
            hint = gpu_hint()
            if hint:
                self.deviceProblem.emit(hint)
        except Exception:  # a missing or broken device module must not stop the model
            traceback.print_exc()
