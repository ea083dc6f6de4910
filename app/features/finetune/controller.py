"""FineTuneController: gathers the project's labels, runs the worker, installs the new version.

A run trains on every annotated image of the project (rough labels and corrected masks)
but those marked as held out, which are scored before and after instead. It is refused
while the model's classes are not the project's (a model for them comes first: the
``new_model_for_project`` action). Once the new version is loaded, the worker segments the
other open images with it, so the next round of corrections starts from its predictions.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.features.finetune.starts import PredictionStarts, count_starts
from app.features.finetune.versions import (
    MODELS_DIR,
    Version,
    lineage,
    next_version_path,
    read_versions,
    version_files,
)
from app.features.host import AppContext
from app.state.document import ImageDocument
from app.workers.finetune import (
    FineTuneJob,
    FineTuneOutcome,
    FineTuneWorker,
    ImagePrediction,
    NewModelJob,
)
from app.workers.worker_thread import WorkerThread

MAX_HELD_OUT = 8
_PREDICTION = re.compile(r"FCN-(\w+) prediction")
_RESTORED_SOURCES = ("the project", "the stroke journal")
"""Sources of a mask restored from the project: they say nothing of how it started."""


@dataclass(frozen=True)
class RunResults:
    """Whose results the dock shows: the run from ``parent`` to ``child`` in ``folder``."""

    parent_id: str
    child_id: str
    parent_name: str
    child_name: str
    folder: Path | None


@dataclass
class FineTuneOptions:
    """What the dock lets the user choose.

    Attributes:
        mode: "fast" (backbone frozen, features cached, heads only) or "full".
        iterations: Optimizer steps.
        lr: Learning rate.
        corrected_only: Loss only on the pixels the user corrected.
        mix_original: Mix in images of the open dataset that have reference masks.
        predict_all: Segment every open image with the new version afterwards.
    """

    mode: str = "fast"
    iterations: int = 200
    lr: float = 1e-2
    corrected_only: bool = False
    mix_original: bool = False
    predict_all: bool = True


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
        imagePredicted(object): the new version segmented that image (a Path; its
            document holds the prediction).
        modelMade(object, object): a new model for the project's classes was saved (its
            path and ModelInfo).
        modelFailed(str): no new model was made (why).
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
    imagePredicted = Signal(object)
    modelMade = Signal(object, object)
    modelFailed = Signal(str)
    _run = Signal(object, object)
    _warm = Signal()
    _make = Signal(object)

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
            self,
            "fcn-finetune",
            FineTuneWorker,
            inbound={"run": self._run, "warm_up": self._warm, "make_model": self._make},
            outbound={
                "warmed": self._on_warmed,
                "phase": self.phase,
                "progress": self.progress,
                "versionReady": self._on_version,
                "finished": self._on_finished,
                "failed": self._on_failed,
                "cancelled": self._on_cancelled,
                "imagePredicted": self._on_predicted,
                "modelMade": self.modelMade,
                "modelFailed": self.modelFailed,
            },
        )
        self._expect_model: Path | None = None
        self._preview_doc: Any | None = None
        self._warming = False
        self.warmed = False
        self.starts_seen: dict[Path, str | None] = {}  # image -> start variant (None: other)
        self._noted: tuple[Any, str] | None = None
        self.starts: PredictionStarts | None = None  # of the latest run's corrected images
        self.results: RunResults | None = None  # the latest run whose scores are known
        self._folder: Path | None = context.projects.folder
        context.inference.controller.modelLoaded.connect(self._on_model_loaded)
        context.projects.projectChanged.connect(self._on_project)
        context.state.editedMaskChanged.connect(self._note_start)

    # ------------------------------------------------------------------ data
    def _note_start(self) -> None:
        """Remember what the current image's corrected mask started from (this session)."""
        st = self.context.state
        doc, source = st.document, st.edited_source
        if (doc, source) == self._noted:
            return  # (every stroke says so again)
        self._noted = (doc, source)
        if (
            doc is None
            or doc.path is None
            or st.edited_mask is None
            or not source
            or source in _RESTORED_SOURCES
        ):
            return
        match = _PREDICTION.fullmatch(source)
        self.starts_seen[doc.path.resolve()] = match.group(1) if match else None

    def prediction_starts(self, job: FineTuneJob) -> PredictionStarts:
        """Which of ``job``'s masks started from a prediction (see :func:`count_starts`)."""
        return count_starts(job, self.starts_seen)

    def held_out_candidates(self, corrected: set[Path]) -> list[tuple[Path, Path]]:
        """Open images with reference masks that are not among the corrected ones."""
        return [
            (e.image, e.mask)
            for e in self.context.documents.entries
            if e.mask is not None and e.image.resolve() not in corrected
        ]

    def class_mismatch(self) -> str | None:
        """Why the loaded model cannot train on the project's masks (its classes are not
        the project's), or None."""
        classes = self.context.projects.classes
        names = self.context.models.class_names()
        if not classes.model_differs(names):
            return None
        return (
            f"the model's classes ({_names(names)}) are not the project's "
            f"({_names(classes.names)}), and its masks are in the project's classes. "
            "Make a model for the project's classes first (Model > New Model for This "
            "Project's Classes…)"
        )

    def build_job(self) -> FineTuneJob | str:
        """The job for the current options, or why there is none (a user-facing message)."""
        from core.training.finetune import FineTuneConfig

        ctx = self.context
        loaded = ctx.models.loaded
        if loaded is None:
            return "Load a model first"
        mismatch = self.class_mismatch()
        if mismatch:
            return mismatch
        if not ctx.projects.save_pending():
            return "Some masks could not be saved; fine-tuning needs them on disk"
        project = ctx.projects.project
        ids = project.training_ids() if project is not None else []
        if not ids:
            return (
                "No corrected image or rough labels yet: paint a few strokes of each "
                "class first (Edit > Annotate, From: Rough labels, so the pixels you do "
                "not paint are ignored; or correct a prediction). Held-out images are "
                "not trained on"
            )
        used = {project.image_path(i) for i in ids}
        annotated = set(project.corrected_ids())
        marked = [
            (project.image_path(i), project.mask_path(i))
            for i in project.held_out_ids()
            if i in annotated
        ]
        candidates = self.held_out_candidates(used | {image for image, _ in marked})
        opts = self.options
        mix: list[tuple[Path, Path]] = []
        held = candidates
        if opts.mix_original and candidates:
            n_held = len(candidates) // 4 if len(candidates) >= 2 else 0
            held, mix = candidates[:n_held], candidates[n_held:]
        held = [*marked, *held][:MAX_HELD_OUT]
        out = next_version_path(project.folder, loaded.path)
        from app.features.finetune.versions import version_name

        config = FineTuneConfig.for_mode(
            opts.mode,
            iterations=int(opts.iterations),
            lr=float(opts.lr),
            corrected_only=bool(opts.corrected_only),
            mix_original=mix or None,
            name=version_name(loaded.info.name, out),
        )
        doc = ctx.state.document
        shown = doc.path.resolve() if doc is not None and doc.path is not None else None
        predict = (
            [(e.image, e.mask) for e in ctx.documents.entries if e.image.resolve() != shown]
            if opts.predict_all
            else []
        )
        return FineTuneJob(
            loaded.path,
            project,
            ids,
            config,
            ctx.settings.device,
            out,
            held,
            doc.image if doc is not None else None,
            doc.reference if doc is not None else None,
            predict,
        )

    def make_model(self, job: NewModelJob) -> None:
        """Make a new model in the worker's thread (``modelMade`` or ``modelFailed``)."""
        self._thread.ensure()
        self._make.emit(job)

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
        notes.notify(
            f"Training ({job.config.mode}) on {len(job.ids)} annotated image(s)"
            + (f", {len(job.held_out)} held out" if job.held_out else "")
        )
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
        loaded = self.context.models.loaded
        parent_name = (
            loaded.info.name
            if loaded is not None and loaded.info.id == outcome.parent_id
            else outcome.parent_id[:8]
        )
        self.results = RunResults(
            outcome.parent_id,
            outcome.info.id or "",
            parent_name or outcome.parent_id[:8],
            outcome.info.name or outcome.checkpoint.stem,
            self.job.project.folder if self.job is not None else None,
        )
        self.starts = self.prediction_starts(self.job) if self.job is not None else None
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

    def _on_predicted(self, p: ImagePrediction) -> None:
        """Keep an image segmented by the new version in its document (made if needed)."""
        cache = self.context.documents.cache
        doc = cache.get(p.path)
        if doc is None:
            doc = ImageDocument(p.image, p.path, p.reference, p.reference_path)
            cache.put(doc)
        doc.set_prediction(p.model_id, p.result.prediction, {("stats", p.model_id): p.result.stats})
        self.imagePredicted.emit(p.path)

    def _on_finished(self, outcome: FineTuneOutcome) -> None:
        self.last = outcome
        self._end()
        v8 = (
            outcome.before.get("8s", {}).get("mean_iu"),
            outcome.after.get("8s", {}).get("mean_iu"),
        )
        score = f": FCN-8s mean IU {v8[0]:.3f} → {v8[1]:.3f}" if None not in v8 else ""
        self.context.notifications.notify(
            f"Fine-tuned in {outcome.seconds:.1f} s ({outcome.iterations} steps){score}; "
            f"saved {outcome.checkpoint}. View > Mark Changes from Previous Version "
            "(Shift+X) shows where the predictions changed"
        )
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
        """The lineage of the model in use (its root and every descendant), from the
        checkpoints loaded in this session and the project's versions, as a tree."""
        every = read_versions([*self.known, *version_files(self.context.projects.folder)])
        return lineage(every, self.current_id())

    def _on_project(self, project: Any) -> None:
        """Another project folder: the versions saved in the previous one are forgotten
        (but the model in use)."""
        folder = project.folder if project is not None else None
        old, self._folder = self._folder, folder
        if old is not None and folder != old:
            models = (Path(old) / MODELS_DIR).resolve()
            in_use = self.context.models.checkpoint
            self.known = [
                p for p in self.known if Path(p).resolve().parent != models or p == in_use
            ]
        self.versionsChanged.emit()

    def current_id(self) -> str | None:
        """The loaded model's id."""
        loaded = self.context.models.loaded
        return loaded.info.id if loaded is not None else None

    def use(self, version: Version) -> None:
        """Switch the viewer to ``version``."""
        self.context.inference.load_model(str(version.path))


def _names(names: list[str], limit: int = 6) -> str:
    return ", ".join(names[:limit]) + (" …" if len(names) > limit else "")
