"""FineTuneWorker: runs core ``fine_tune`` in its own QThread, never touching widgets.

Inputs arrive as a :class:`FineTuneJob` through a queued slot; the loss of every step,
the phase, the result or the failure leave as signals. The old model is loaded from its
checkpoint here (the GUI's inference worker keeps using its own copy); nothing replaces it
unless the run finishes, and a cancelled run writes nothing. Once the new version is saved
it segments the image on screen, scores the held-out images and then segments the
project's other images (``imagePredicted`` for each), so the next round of corrections
starts from its predictions.

A :class:`NewModelJob` (a new model for the project's classes from a trunk,
:func:`core.training.own_classes.make_model`) runs in the same thread: it is the first
version of a project's lineage.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from app.workers.support import describe_error

PROGRESS_INTERVAL_S = 0.2
"""At most 5 progress signals a second: each redraws the loss curve (Python, under the GIL)."""
THREADS_ENV = "FCN_STUDIO_FINETUNE_THREADS"


def training_threads() -> int | None:
    """Torch threads for a run: ``$FCN_STUDIO_FINETUNE_THREADS``, else 1 on a busy machine.

    Fast mode is many small operations; when other processes keep every core busy, each
    OpenMP barrier waits for a descheduled thread and two threads run 5-15x slower than
    one (measured on 2 shared cores). None keeps torch's setting (an idle machine).
    """
    value = os.environ.get(THREADS_ENV, "auto").strip().lower()
    if value not in ("", "auto"):
        try:
            return max(1, int(value))
        except ValueError:
            return None
    try:
        busy = os.getloadavg()[0] >= (os.cpu_count() or 1) - 0.5
    except OSError:
        return None
    return 1 if busy else None


@dataclass
class FineTuneJob:
    """Everything a run needs (built on the GUI thread, read in the worker).

    Attributes:
        checkpoint: The current model's checkpoint (the parent of the new version).
        project: The annotation project holding the corrected masks.
        ids: Project image ids to train on.
        config: A core ``FineTuneConfig``.
        device: Device preference ("auto", "cpu", "cuda:N").
        out_path: The new checkpoint file.
        held_out: ``(image, mask)`` files to score before and after (not trained on).
        preview: The image shown in the viewer (RGB): the new version segments it here, so
            the improved prediction is ready when the viewer switches models.
        preview_reference: Its reference mask (for the statistics panel), or None.
    """

    checkpoint: Path
    project: Any
    ids: list[str]
    config: Any
    device: str
    out_path: Path
    held_out: list[tuple[Path, Path]] = field(default_factory=list)
    preview: np.ndarray | None = None
    preview_reference: np.ndarray | None = None
    predict: list[tuple[Path, Path | None]] = field(default_factory=list)


@dataclass(frozen=True)
class NewModelJob:
    """A new model for the project's classes (built on the GUI thread, run in the worker).

    Attributes:
        init: The trunk's source: a checkpoint, or ``"imagenet"`` (torchvision's VGG16).
        class_names: The project's classes.
        colors: Their colors.
        out_path: The new checkpoint (in the project's ``models/``).
        name: The new model's name.
        source_name: What the dialog called the source (for messages).
    """

    init: str
    class_names: list[str]
    colors: list[tuple[int, int, int]]
    out_path: Path
    name: str
    source_name: str = ""


@dataclass(frozen=True)
class ImagePrediction:
    """One project image segmented by the new version (for the document cache)."""

    path: Path
    image: np.ndarray
    reference: np.ndarray | None
    reference_path: Path | None
    model_id: str
    result: Any  # app.workers.inference.PredictResult


@dataclass
class FineTuneOutcome:
    """A finished run: the new version and the before/after scores."""

    checkpoint: Path
    info: Any
    parent_id: str
    before: dict[str, dict]
    after: dict[str, dict]
    held_before: dict[str, dict]
    held_after: dict[str, dict]
    loss_history: list[tuple[int, float]]
    iterations: int
    seconds: float
    images: int
    held_images: int
    preview: Any | None = None  # app.workers.inference.PredictResult of the job's preview image
    predicted: int = 0  # the project's other images segmented by the new version


class FineTuneWorker(QObject):
    """Runs one fine-tune at a time in its thread.

    Signals:
        phase(str): what it is doing ("Loading the model…", "Training…").
        progress(object): a core ``TrainProgress`` (throttled to 5 per second).
        versionReady(object): the new checkpoint is written: a :class:`FineTuneOutcome`
            without held-out scores (the GUI can load the new model at once).
        finished(object): the final :class:`FineTuneOutcome` (held-out scores included).
        failed(str): a user-facing message.
        cancelled(): the run was cancelled; nothing was written.
        warmed(): :meth:`warm_up` is done.
        imagePredicted(object): an :class:`ImagePrediction` of the project's images.
        modelMade(object, object): a :class:`NewModelJob` is done: its path and ModelInfo.
        modelFailed(str): a :class:`NewModelJob` failed (a user-facing message).
    """

    phase = Signal(str)
    progress = Signal(object)
    versionReady = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    warmed = Signal()
    imagePredicted = Signal(object)
    modelMade = Signal(object, object)
    modelFailed = Signal(str)

    @Slot()
    def warm_up(self) -> None:
        """Import the training code ahead of a run: torch builds its first optimizer only
        after importing ``torch._dynamo`` (about 1.5 s), which would delay the first step."""
        try:
            import torch

            import core.training.finetune  # noqa: F401

            torch.optim.Adam([torch.zeros(1, requires_grad=True)])
        except Exception:  # a failed warm-up only costs the time again later
            traceback.print_exc()
        self.warmed.emit()

    @Slot(object)
    def make_model(self, job: NewModelJob) -> None:
        """Make, save and announce a new model for the project's classes."""
        try:
            from core.training.own_classes import make_model

            self.phase.emit(f"Making a model for {len(job.class_names)} classes from "
                            f"{job.source_name or job.init}…")
            _model, info = make_model(job.class_names, job.init, job.out_path,
                                      colors=job.colors, name=job.name)
        except Exception as exc:
            from core.errors import DownloadError

            traceback.print_exc()
            text = describe_error(exc, "No new model was made")
            if isinstance(exc, DownloadError):  # every line: which file to place where
                text = f"No new model was made: {' '.join(str(exc).split())}"
            self.modelFailed.emit(text)
            return
        self.modelMade.emit(job.out_path, info)

    @Slot(object, object)
    def run(self, job: FineTuneJob, cancel: threading.Event) -> None:
        """Fine-tune, score held-out images, emit the outcome.

        Unlike inference, the thread keeps its normal priority: the user is waiting for it
        (with a lowered priority a busy machine made runs about twice as slow).
        """
        import torch

        threads, before = training_threads(), torch.get_num_threads()
        try:
            if threads is not None:
                torch.set_num_threads(threads)
            outcome = self._run(job, cancel)
        except Exception as exc:
            traceback.print_exc()
            self.failed.emit(describe_error(exc, "Fine-tuning failed"))
            return
        finally:
            torch.set_num_threads(before)
        if outcome is None:
            self.cancelled.emit()
        else:
            self.finished.emit(outcome)

    def _run(self, job: FineTuneJob, cancel: threading.Event) -> FineTuneOutcome | None:
        from core.checkpoints.checkpoint import load_checkpoint
        from core.inference.devices import pick_device
        from core.training.finetune import fine_tune

        t0 = time.perf_counter()
        device = pick_device(job.device or "auto")
        self.phase.emit(f"Loading the model and {len(job.ids)} corrected image(s)…")
        model, info = load_checkpoint(job.checkpoint, device=device)
        items = job.project.training_items(job.ids)
        if cancel.is_set():
            return None
        self.phase.emit("Caching backbone features…" if job.config.mode == "fast"
                        else "Training every layer…")
        last = [0.0]

        def report(p: Any) -> None:
            now = time.monotonic()
            if p.iteration in (1, p.total) or now - last[0] >= PROGRESS_INTERVAL_S:
                last[0] = now
                self.progress.emit(p)

        def saved(result: Any) -> None:
            outcome = self._outcome(job, info, result, len(items), t0)
            if job.preview is not None and not cancel.is_set():
                outcome = replace(outcome, preview=self._segment(result, job, device))
            self.versionReady.emit(outcome)
            if job.held_out and not cancel.is_set():
                self.phase.emit(f"Scoring {len(job.held_out)} held-out image(s)…")

        result = fine_tune(model, info, items, job.config, device=device, progress=report,
                           cancel=cancel.is_set, out_path=job.out_path,
                           held_out=job.held_out, on_saved=saved)
        if result.cancelled or result.info is None:
            return None
        outcome = self._outcome(job, info, result, len(items), t0)
        if cancel.is_set():  # cancelled while scoring: the new version stays, unscored
            return replace(outcome, held_before={}, held_after={}, held_images=0)
        return replace(outcome, predicted=self._predict_all(result, job, device, cancel))

    def _predict_all(self, result: Any, job: FineTuneJob, device: Any,
                     cancel: threading.Event) -> int:
        """Segment the project's other images with the new version (each one announced);
        an unreadable image is skipped. Returns how many were segmented."""
        from app.common.stats import image_stats
        from app.workers.inference import PredictResult
        from core.data.imageio import read_image, read_mask
        from core.errors import FCNStudioError
        from core.inference import Segmenter

        if not job.predict:
            return 0
        seg = Segmenter(result.model, result.info, device=device)
        done = 0
        for k, (path, mask_path) in enumerate(job.predict):
            if cancel.is_set():
                break
            self.phase.emit(f"Segmenting the project's images with the new version: "
                            f"{k + 1} / {len(job.predict)}…")
            try:
                rgb = read_image(path)
                mask = read_mask(mask_path) if mask_path is not None else None
                if mask is not None and mask.shape != rgb.shape[:2]:
                    mask, mask_path = None, None
                pred = seg.predict(rgb, cancel=cancel.is_set)
            except (FCNStudioError, OSError, ValueError, MemoryError):
                continue
            stats = image_stats(pred, mask, result.info.num_classes)
            self.imagePredicted.emit(ImagePrediction(path, rgb, mask, mask_path,
                                                     result.info.id or "",
                                                     PredictResult(pred, stats)))
            done += 1
        return done

    @staticmethod
    def _outcome(job: FineTuneJob, info: Any, result: Any, images: int,
                 t0: float) -> FineTuneOutcome:
        return FineTuneOutcome(
            checkpoint=Path(job.out_path), info=result.info, parent_id=info.id,
            before=result.before, after=result.after, held_before=result.held_before,
            held_after=result.held_after, loss_history=list(result.loss_history),
            iterations=result.iterations, seconds=time.perf_counter() - t0, images=images,
            held_images=result.held_images,
        )

    @staticmethod
    def _segment(result: Any, job: FineTuneJob, device: Any) -> Any:
        """The new version's prediction (and statistics) of the preview image."""
        from app.common.stats import image_stats
        from app.workers.inference import PredictResult
        from core.inference import Segmenter

        seg = Segmenter(result.model, result.info, device=device)
        pred = seg.predict(job.preview)
        return PredictResult(pred, image_stats(pred, job.preview_reference,
                                               result.info.num_classes))
