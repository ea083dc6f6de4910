"""FineTuneController: gathers the corrections, runs the worker, installs the new version."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.features.finetune.versions import Version, next_version_path, read_versions, version_files
from app.features.host import AppContext
from app.workers.finetune import FineTuneJob, FineTuneOutcome, FineTuneWorker
from app.workers.worker_thread import WorkerThread

MAX_HELD_OUT = 8


@dataclass
class FineTuneOptions:
    """What the dock lets the user choose.

    Attributes:
        mode: "fast" (backbone frozen, features cached, heads only) or "full".
        iterations: Optimizer steps.
        lr: Learning rate.
        corrected_only: Loss only on the pixels the user corrected.
        mix_original: Mix in images of the open dataset that have reference masks.
    """

    mode: str = "fast"
    iterations: int = 200
    lr: float = 1e-2
    corrected_only: bool = False
    mix_original: bool = False


class FineTuneController(QObject):
    """Owns the fine-tune thread; loads the new version into the viewer when it is ready.

    Signals:
        started(int): a run started on that many corrected images.
        phase(str), progress(object): forwarded from the worker.
        versionReady(object): the new checkpoint exists (a FineTuneOutcome); it is loading.
        finished(object): the final FineTuneOutcome (held-out scores included).
        failed(str): a user-facing message.
        cancelled(): the run was cancelled; the previous model stays.
        busyChanged(bool): a run started or ended.
        versionsChanged(): the list of versions may have changed.
    """

    started = Signal(int)
    phase = Signal(str)
    progress = Signal(object)
    versionReady = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    busyChanged = Signal(bool)
    versionsChanged = Signal()
    _run = Signal(object, object)
    _warm = Signal()

    def __init__(self, context: AppContext, parent: QObject | None = None) -> None:
        """Follow the context's model and project."""
        super().__init__(parent)
        self.context = context
        self.options = FineTuneOptions()
        self.busy = False
        self.last: FineTuneOutcome | None = None
        self.job: FineTuneJob | None = None  # the job of the latest run started
        self.known: list[Path] = []
        self._cancel: threading.Event | None = None
        self._thread = WorkerThread(
            self, "fcn-finetune", FineTuneWorker,
            inbound={"run": self._run, "warm_up": self._warm},
            outbound={"warmed": self._on_warmed, "phase": self.phase,
                      "progress": self.progress, "versionReady": self._on_version,
                      "finished": self._on_finished, "failed": self._on_failed,
                      "cancelled": self._on_cancelled},
        )
        self._expect_model: Path | None = None
        self._preview_doc: Any | None = None
        self._warming = False
        self.warmed = False
        context.inference.controller.modelLoaded.connect(self._on_model_loaded)
        context.projects.projectChanged.connect(lambda _p: self.versionsChanged.emit())

    # ------------------------------------------------------------------ data
    def held_out_candidates(self, corrected: set[Path]) -> list[tuple[Path, Path]]:
        """Open images with reference masks that are not among the corrected ones."""
        return [(e.image, e.mask) for e in self.context.documents.entries
                if e.mask is not None and e.image.resolve() not in corrected]

    def build_job(self) -> FineTuneJob | str:
        """The job for the current options, or why there is none (a user-facing message)."""
        from core.training.finetune import FineTuneConfig

        ctx = self.context
        loaded = ctx.models.loaded
        if loaded is None:
            return "Load a model first"
        if not ctx.projects.save_pending():
            return "Some masks could not be saved; fine-tuning needs them on disk"
        project = ctx.projects.project
        ids = project.corrected_ids() if project is not None else []
        if not ids:
            return ("No corrected image yet: correct a mask first (Edit > Annotate, paint, "
                    "it is saved when you switch images)")
        corrected = {project.image_path(i) for i in ids}
        candidates = self.held_out_candidates(corrected)
        opts = self.options
        mix: list[tuple[Path, Path]] = []
        held = candidates[:MAX_HELD_OUT]
        if opts.mix_original and candidates:
            n_held = len(candidates) // 4 if len(candidates) >= 2 else 0
            held, mix = candidates[:min(n_held, MAX_HELD_OUT)], candidates[n_held:]
        out = next_version_path(project.folder, loaded.path)
        from app.features.finetune.versions import version_name

        config = FineTuneConfig(
            mode=opts.mode, iterations=int(opts.iterations), lr=float(opts.lr),
            corrected_only=bool(opts.corrected_only), mix_original=mix or None,
            name=version_name(loaded.info.name, out),
        )
        doc = ctx.state.document
        return FineTuneJob(loaded.path, project, ids, config, ctx.settings.device, out, held,
                           doc.image if doc is not None else None,
                           doc.reference if doc is not None else None)

    # ------------------------------------------------------------------ running
    def start(self) -> bool:
        """Start a run with the current options; False (with a message) when it cannot."""
        notes = self.context.notifications
        if self.busy:
            notes.notify("A fine-tune is already running", "warning")
            return False
        job = self.build_job()
        if isinstance(job, str):
            notes.notify(f"Cannot train on corrections: {job}", "warning")
            return False
        self.job = job
        self._thread.ensure()
        self._cancel = threading.Event()
        self._preview_doc = self.context.state.document
        self.busy = True
        self.busyChanged.emit(True)
        self.started.emit(len(job.ids))
        notes.notify(f"Fine-tuning ({job.config.mode}) on {len(job.ids)} corrected image(s)"
                     + (f", {len(job.held_out)} held out" if job.held_out else ""))
        self._run.emit(job, self._cancel)
        return True

    def warm_up(self) -> None:
        """Import the training code in the fine-tune thread now (once), not on the click."""
        if self._warming or self.warmed:
            return
        self._warming = True
        self._thread.ensure()
        self._warm.emit()

    def _on_warmed(self) -> None:
        self._warming, self.warmed = False, True

    def cancel(self) -> bool:
        """Cancel the running fine-tune (the current model stays); True if one was running."""
        if self.busy and self._cancel is not None:
            self._cancel.set()
            return True
        return False

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Cancel and stop the thread."""
        self.cancel()
        self._thread.shutdown(timeout_ms)

    # ------------------------------------------------------------------ results
    def _on_version(self, outcome: FineTuneOutcome) -> None:
        self.last = outcome
        self.remember(outcome.checkpoint)
        self._expect_model = outcome.checkpoint
        doc, preview = self._preview_doc, outcome.preview
        if doc is not None and preview is not None and outcome.info.id:
            # segmented in the fine-tune thread: shown as soon as the new version is loaded
            new_id = outcome.info.id
            doc.set_prediction(new_id, preview.prediction, {("stats", new_id): preview.stats})
        self.context.inference.load_model(str(outcome.checkpoint))
        self.versionReady.emit(outcome)
        self.versionsChanged.emit()

    def _on_finished(self, outcome: FineTuneOutcome) -> None:
        self.last = outcome
        self._end()
        v8 = (outcome.before.get("8s", {}).get("mean_iu"), outcome.after.get("8s", {})
              .get("mean_iu"))
        score = f": FCN-8s mean IU {v8[0]:.3f} → {v8[1]:.3f}" if None not in v8 else ""
        self.context.notifications.notify(
            f"Fine-tuned in {outcome.seconds:.1f} s ({outcome.iterations} steps){score}; "
            f"saved {outcome.checkpoint}. View > Mark Changes from Previous Version "
            "(Shift+X) shows where the predictions changed")
        self.finished.emit(outcome)

    def _on_failed(self, message: str) -> None:
        self._end()
        self.context.notifications.notify(message, "error")
        self.failed.emit(message)

    def _on_cancelled(self) -> None:
        self._end()
        self.context.notifications.notify("Fine-tuning cancelled: the model is unchanged")
        self.cancelled.emit()

    def _end(self) -> None:
        self.busy = False
        self._cancel = None
        self.busyChanged.emit(False)

    def _on_model_loaded(self, loaded: Any) -> None:
        self.remember(loaded.path)
        if self._expect_model is not None and Path(loaded.path) == self._expect_model:
            self._expect_model = None
            if not self.context.inference.autorun:
                self.context.inference.run_current()  # show the improved prediction now
        self.versionsChanged.emit()

    # ------------------------------------------------------------------ versions
    def remember(self, path: Path) -> None:
        """Keep ``path`` in the versions list (models loaded during this session)."""
        path = Path(path)
        if path not in self.known:
            self.known.append(path)

    def versions(self) -> list[Version]:
        """Known checkpoints and the project's versions, as a lineage tree."""
        return read_versions([*self.known, *version_files(self.context.projects.folder)])

    def current_id(self) -> str | None:
        """The loaded model's id."""
        loaded = self.context.models.loaded
        return loaded.info.id if loaded is not None else None

    def use(self, version: Version) -> None:
        """Switch the viewer to ``version``."""
        self.context.inference.load_model(str(version.path))
