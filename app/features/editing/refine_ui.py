"""Edit > Refine with Image Edges (R) and Refine Visible Part with Image Edges (Shift+R).

The mask (of the whole image, or of the part in view) is refined with the image's edges by
the mean-field CRF of :mod:`core.refine.crf` in the correction thread (in tiles, cancellable
from the status bar or with Esc). The result is a preview: the changed pixels are outlined
in cyan and shown with their new classes; *Show Before / After* (V) compares with the mask
as it is; Accept (Enter) makes it one undoable, journaled edit (``LabelImage.replace``),
Discard (Esc) leaves the mask. A preview whose mask changed meanwhile (a stroke, an undo)
is dropped, as is one of another image.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QObject

from app.features.editing.correction_worker import CorrectionController, CorrectionJob
from app.features.editing.edge_tools_ui import visible_box
from app.features.editing.edit_actions import EditActions
from app.features.editing.manager import EditingManager
from app.features.editing.preview_ui import PreviewControl, mask_lut
from app.features.host import WindowHost

OWNER = "refine"


class RefineUi(QObject):
    """Runs the refinement and holds its preview until Accept or Discard.

    Attributes:
        result: The pending result (``box``, ``labels``, ``changed``, ``images``) or None.
        last_thread: The thread that computed the last result (tests).
    """

    def __init__(self, manager: EditingManager, controller: CorrectionController,
                 previews: PreviewControl, actions: EditActions, host: WindowHost,
                 parent: QObject | None = None) -> None:
        """Connect Edit > Refine… and follow the mask."""
        super().__init__(parent)
        self.manager, self.controller, self.previews = manager, controller, previews
        self.state, self.host = manager.state, host
        self.result: dict[str, Any] | None = None
        self.last_thread = ""
        self._job: CorrectionJob | None = None
        actions.refine.triggered.connect(lambda: self.run(visible=False))
        actions.refine_visible.triggered.connect(lambda: self.run(visible=True))
        controller.finished.connect(self._on_finished)
        controller.failed.connect(self._on_failed)
        controller.progress.connect(self._on_progress)
        manager.sessionChanged.connect(lambda _s: self.discard())
        manager.annotatingChanged.connect(lambda on: None if on else self.discard())
        self.state.editedMaskChanged.connect(self._check_stale)

    @property
    def busy(self) -> bool:
        """Whether a refinement runs."""
        return self._job is not None

    def run(self, visible: bool = False) -> CorrectionJob | None:
        """Refine the mask (``visible``: only the part in view) in the correction thread."""
        session, doc = self.manager.session, self.state.document
        notify = self.manager.notifications.notify
        if session is None or doc is None or not self.manager.annotating:
            notify("Start a mask (Annotate) before refining it", "warning")
            return None
        self.previews.discard_pending()  # (one preview at a time)
        h, w = session.labels.shape
        box = visible_box(self.manager.canvas) if visible else (0, 0, w, h)
        if box is None:
            return None
        n = session.image.num_classes or int(session.labels[session.labels != 255].max(
            initial=0)) + 1
        self._job = self.controller.submit(
            "refine", doc.path.resolve() if doc.path is not None else id(doc), rgb=doc.image,
            labels=session.labels.copy(), num_classes=n, box=box, lut=mask_lut(self.state),
            opacity=self.state.overlay_opacity, session=session,
            revision=session.image.revision)
        part = "the part in view" if visible else "the whole mask"
        self.previews.offer(OWNER, f"Refining {part} with the image's edges…", accept=None,
                            discard=self.discard)
        self.host.show_progress(OWNER, f"Refining {part} with the image's edges",
                                0.0, cancel=self.discard)
        return self._job

    def _on_progress(self, job: CorrectionJob, fraction: float) -> None:
        if job is self._job:
            self.host.show_progress(OWNER, "Refining with the image's edges", fraction,
                                    cancel=self.discard)

    def _on_finished(self, job: CorrectionJob, result: Any) -> None:
        if job is not self._job:
            return
        self._job = None
        self.host.hide_progress(OWNER)
        self.last_thread = result.thread
        session = job.args["session"]
        if session is not self.manager.session or \
                session.image.revision != job.args["revision"]:
            self.previews.clear(OWNER)
            return
        value = result.value
        count = int(value["changed"].sum())
        if count == 0:
            self.previews.clear(OWNER)
            self.manager.notifications.notify("Refining with the image's edges changes no "
                                              "pixel of this mask")
            return
        self.result = {**value, "revision": job.args["revision"]}
        x0, y0, x1, y1 = value["box"]
        share = 100.0 * count / max(1, (x1 - x0) * (y1 - y0))
        self.previews.offer(
            OWNER, f"Refined: {count:,} pixels change ({share:.1f}%; outlined in cyan; "
            f"{result.seconds:.1f} s)", accept=self.accept, discard=self.discard,
            images=value["images"])

    def _on_failed(self, job: CorrectionJob, message: str) -> None:
        if job is self._job:
            self._job = None
            self.host.hide_progress(OWNER)
            self.previews.clear(OWNER)
            self.manager.notifications.notify(message, "error")

    def accept(self) -> bool:
        """Apply the pending refinement as one undoable edit."""
        value, session = self.result, self.manager.session
        if value is None or session is None:
            return False
        self.result = None
        self.previews.clear(OWNER)
        x0, y0, x1, y1 = value["box"]
        new = session.labels.copy()
        part = new[y0:y1, x0:x1]
        changed = value["changed"]
        part[changed] = value["labels"][changed]
        edit = session.image.replace(new, label="refine with image edges")
        if session.push(edit):
            self.manager.tools.edited.emit()
            self.manager.notifications.notify(
                f"Refined {int(np.count_nonzero(changed)):,} pixels with the image's edges "
                "(Ctrl+Z takes it back)")
            return True
        return False

    def discard(self) -> None:
        """Drop the pending refinement (or stop the running one)."""
        if self._job is not None:
            job, self._job = self._job, None
            self.controller.cancel(lambda j: j is job)
            self.host.hide_progress(OWNER)
        self.result = None
        self.previews.clear(OWNER)

    def _check_stale(self) -> None:
        """The mask changed under a pending preview (a stroke, an undo): drop it."""
        if self.result is None:
            return
        session = self.manager.session
        job_revision = self.result.get("revision")
        if session is None or (job_revision is not None
                               and session.image.revision != job_revision):
            self.discard()
            self.manager.notifications.notify("The refinement preview was dropped: the mask "
                                              "changed (run Refine again)", "warning")
