"""FineTuneWorker: runs core ``fine_tune`` in its own QThread, never touching widgets.

Inputs arrive as a :class:`FineTuneJob` through a queued slot; the loss of every step,
the phase, the result or the failure leave as signals. The old model is loaded from its
checkpoint here (the GUI's inference worker keeps using its own copy); nothing replaces it
unless the run finishes, and a cancelled run writes nothing.
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


def held_out_scores(model: Any, info: Any, pairs: list[tuple[Path, Path]], device: Any,
                    cancel: threading.Event) -> dict[str, dict]:
    """The four metrics per variant of ``model`` over ``pairs`` (void ignored; big images
    are segmented in tiles)."""
    from app.common.stats import confusion
    from core.data.imageio import read_image, read_mask
    from core.inference import Segmenter
    from core.metrics import segmentation_scores
    from core.models.fcn import VARIANTS

    n = info.num_classes
    conf = {v: np.zeros((n, n), np.int64) for v in VARIANTS}
    seg = Segmenter(model, info, device=device)
    for image_path, mask_path in pairs:
        if cancel.is_set():
            break
        pred = seg.predict(read_image(image_path), cancel=cancel.is_set)
        truth = read_mask(mask_path)
        for v in VARIANTS:
            conf[v] += confusion(truth, pred.outputs[v].labels, n)
    return {v: segmentation_scores(conf[v]) for v in VARIANTS}


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
    """

    phase = Signal(str)
    progress = Signal(object)
    versionReady = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    warmed = Signal()

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
        from core.checkpoint import load_checkpoint
        from core.devices import pick_device
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

        result = fine_tune(model, info, items, job.config, device=device, progress=report,
                           cancel=cancel.is_set, out_path=job.out_path)
        if result.cancelled or result.info is None:
            return None
        outcome = FineTuneOutcome(
            checkpoint=Path(job.out_path), info=result.info, parent_id=info.id,
            before=result.before, after=result.after, held_before={}, held_after={},
            loss_history=list(result.loss_history), iterations=result.iterations,
            seconds=time.perf_counter() - t0, images=len(items), held_images=0,
        )
        if job.preview is not None and not cancel.is_set():
            outcome = replace(outcome, preview=self._segment(result, job, device))
        self.versionReady.emit(outcome)
        if job.held_out and not cancel.is_set():
            from core.errors import Cancelled

            self.phase.emit(f"Scoring {len(job.held_out)} held-out image(s)…")
            try:
                before = held_out_scores(model, info, job.held_out, device, cancel)
                after = held_out_scores(result.model, result.info, job.held_out, device,
                                        cancel)
            except Cancelled:  # the new version stays, without these scores
                return outcome
            if not cancel.is_set():
                outcome = replace(outcome, held_before=before, held_after=after,
                                  held_images=len(job.held_out))
        return outcome

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
