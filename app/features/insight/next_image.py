"""NextImageRanker: "Next image to correct": the open images ranked by uncertainty, and the
most uncertain one not corrected yet opened.

Scores are the mean of the chosen uncertainty map (``core.insight.regions.image_score``),
kept per image and model id; the missing ones are computed in the insight thread, one image
at a time, with the status bar's progress and Cancel. The image on screen is left out (the
action moves on), and so are the images whose corrected masks are saved in the project
(unsaved corrections are saved first).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.features.host import AppContext, WindowHost
from app.features.insight.results import InsightJob, Target
from app.features.insight.session import InsightSession

PROGRESS_KEY = "insight-rank"


def _key(path: Path) -> str:
    return str(Path(path).resolve())


class NextImageRanker(QObject):
    """Ranks the open images and opens the most uncertain uncorrected one.

    Signals:
        finished(object): the image opened (a Path), or None when none was.
    """

    finished = Signal(object)

    def __init__(self, session: InsightSession, context: AppContext, host: WindowHost,
                 parent: QObject | None = None) -> None:
        """Follow ``session``'s worker."""
        super().__init__(parent)
        self.session, self.context, self.host = session, context, host
        self._jobs: dict[int, Path] = {}
        self._candidates: list[Path] = []
        self._model_id = ""
        self._total = 0
        self._failed: list[str] = []
        c = session.controller
        c.resultReady.connect(self._on_result)
        c.failed.connect(self._on_failed)
        c.cancelled.connect(self._on_cancelled)

    @property
    def running(self) -> bool:
        """Whether scores are being computed."""
        return bool(self._jobs)

    def corrected(self) -> set[str]:
        """The keys of the images whose corrected masks are saved in the open project."""
        project = self.context.projects.project
        if project is None:
            return set()
        return {_key(project.image_path(i)) for i in project.corrected_ids()}

    def candidates(self) -> list[Path]:
        """The open images that may come next: not shown now, not corrected."""
        nav = self.context.documents
        current = nav.current
        done = self.corrected()
        return [e.image for e in nav.entries
                if e is not current and _key(e.image) not in done]

    def start(self) -> bool:
        """Rank (computing missing scores) and open the winner; False when nothing runs."""
        ctx = self.context
        loaded = ctx.models.loaded
        if self.running:
            return False
        if loaded is None:
            ctx.notifications.notify("Next image to correct: load a model first", "warning")
            return False
        if not ctx.documents.entries:
            ctx.notifications.notify("Next image to correct: open images first", "warning")
            return False
        ctx.projects.save_pending()  # corrections made just now count as corrected
        self._candidates = self.candidates()
        if not self._candidates:
            ctx.notifications.notify("Next image to correct: every other open image is "
                                     "corrected already", "info")
            self.finished.emit(None)
            return False
        self._model_id, self._failed = loaded.model_id, []
        missing = [p for p in self._candidates
                   if (_key(p), loaded.model_id) not in self.session.scores]
        self._total = len(missing)
        for path in missing:
            doc = ctx.documents.cache.get(path)
            target = Target(_key(path), loaded.model_id, loaded.path, loaded.device or "cpu",
                            doc.image if doc is not None else None, path, path.name)
            job = self.session.controller.submit("score", target)
            self._jobs[job.id] = path
        if not self._jobs:
            self._finish()
        else:
            self._show_progress()
        return True

    def cancel(self) -> None:
        """Stop ranking (the scores computed so far are kept)."""
        ids = set(self._jobs)
        self._jobs = {}
        self.session.controller.cancel(lambda j: j.id in ids)
        self.host.hide_progress(PROGRESS_KEY)
        self.context.notifications.notify("Next image to correct: ranking cancelled")
        self.finished.emit(None)

    def ranking(self, source: str | None = None) -> list[tuple[Path, float]]:
        """The candidates with a score, most uncertain first (``source``: the dock's)."""
        from core.insight.regions import rank_images

        source = source or self.session.dock.uncertainty.source
        by_key = {_key(p): p for p in self._candidates}
        scores = {k: self.session.scores[(k, self._model_id)].get(source, 0.0)
                  for k in by_key if (k, self._model_id) in self.session.scores}
        return [(by_key[k], scores[k]) for k in rank_images(scores)]

    def _show_progress(self) -> None:
        done = self._total - len(self._jobs)
        self.host.show_progress(PROGRESS_KEY, f"Ranking images by uncertainty: {done} / "
                                f"{self._total}", done / max(1, self._total), cancel=self.cancel)

    def _take(self, job: InsightJob) -> bool:
        if self._jobs.pop(job.id, None) is None:
            return False
        if self._jobs:
            self._show_progress()
        else:
            self._finish()
        return True

    def _on_result(self, job: InsightJob, _result: Any) -> None:
        if job.kind == "score":
            self._take(job)

    def _on_failed(self, job: InsightJob, message: str) -> None:
        if job.id in self._jobs:
            self._failed.append(message)
            self._take(job)

    def _on_cancelled(self, job: InsightJob) -> None:
        if job.id in self._jobs:  # cancelled from elsewhere (the model changed)
            self._jobs = {}
            self.host.hide_progress(PROGRESS_KEY)
            self.finished.emit(None)

    def _finish(self) -> None:
        self.host.hide_progress(PROGRESS_KEY)
        ctx = self.context
        for message in self._failed:
            ctx.notifications.notify(message, "error")
        ranked = self.ranking()
        if not ranked or ctx.models.model_id != self._model_id:
            ctx.notifications.notify("Next image to correct: no image could be scored",
                                     "warning")
            self.finished.emit(None)
            return
        best, score = ranked[0]
        source = self.session.dock.uncertainty.source
        ctx.notifications.notify(
            f"Next image to correct: {best.name} (mean {source} uncertainty {score:.3f}; "
            f"{len(ranked)} uncorrected image(s) ranked)")
        keys = [_key(e.image) for e in ctx.documents.entries]
        if _key(best) in keys:
            ctx.documents.go(keys.index(_key(best)))
        self.finished.emit(best)
