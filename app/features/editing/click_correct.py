"""The Click Correct tool (K): positive and negative clicks or scribbles on a wrong region;
the model, adapted to this image in the correction thread, re-predicts it as a preview.

A left click says "this is the current class" (positive), a right click or a Shift+left
click "this is not the class it has in the mask" (negative); dragging makes a scribble.
Each click adds to the pending ones and runs :class:`core.refine.clicks.ClickCorrector` on
the image's trunk features (computed with the first click on an image and model, then
cached) in the correction thread; the preview outlines the pixels that would change and
shows their new classes. Accept (Enter) applies it as one undoable, journaled edit: its
pixels count as corrected, so the next fine-tune uses them; Reject (Esc) forgets the
pending clicks. Choosing the tool computes the image's trunk features in the correction
thread at once (:meth:`ClickCorrect.prepare`), so the first click costs what the next ones
do. The model is a CPU copy of the loaded checkpoint; it corrects masks in its
own classes only. Images larger than
:data:`~app.features.editing.correction_engine.CLICK_MAX_SIDE` are corrected in a square
around the first click (outlined): later clicks go inside it until Accept or Reject.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject, QRectF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPen
from PySide6.QtWidgets import QGraphicsRectItem

from app.features.editing.correction_worker import CorrectionController, CorrectionJob
from app.features.editing.manager import EditingManager
from app.features.editing.preview_ui import (
    Z_HINTS,
    Hint,
    HintMarks,
    PreviewControl,
    mask_class_names,
    mask_lut,
)
from app.features.editing.session import EditSession
from app.features.host import WindowHost
from app.state.model import ModelState

OWNER = "correct"
SCRIBBLE_RADIUS = 2.0
"""A scribble labels the pixels this close to its path."""
VOID = 255


class ClickCorrect(QObject):
    """The ``correct`` tool's handler, its pending clicks and its preview.

    Attributes:
        hints: The pending clicks and scribbles (image pixels).
        box: The pixels the pending clicks correct (the image, or a square of a large one).
        result: The preview shown (``box``, ``labels``, ``region``, ``images``, ...), or None.
        last_thread: The thread that computed the last preview (tests).
    """

    def __init__(self, manager: EditingManager, controller: CorrectionController,
                 previews: PreviewControl, models: ModelState, host: WindowHost,
                 parent: QObject | None = None) -> None:
        """Become the tools' ``correct`` handler."""
        super().__init__(parent)
        self.manager, self.tools, self.state = manager, manager.tools, manager.state
        self.controller, self.previews, self.models, self.host = (controller, previews,
                                                                 models, host)
        self.busy = False
        self.hints: list[Hint] = []
        self.box: tuple[int, int, int, int] | None = None
        self.result: dict[str, Any] | None = None
        self.last_thread = ""
        self._job: CorrectionJob | None = None
        self._key: Any = None
        self._revision = -1
        self._drag: list[tuple[int, int]] | None = None
        self._positive, self._label, self._button = True, 0, Qt.MouseButton.LeftButton
        self.marks = manager.canvas.add_layer("correction-hints", HintMarks(), Z_HINTS)
        self.frame = QGraphicsRectItem()
        pen = QPen(QColor(255, 230, 0), 1.5, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.frame.setPen(pen)
        self.frame.setZValue(Z_HINTS)
        self.frame.hide()
        manager.canvas.scene().addItem(self.frame)
        self.tools.handlers[OWNER] = self
        controller.finished.connect(self._on_finished)
        controller.failed.connect(self._on_failed)
        models.changed.connect(self._on_model)
        self.state.editedMaskChanged.connect(self._check_stale)
        self._prepared: tuple | None = None
        self.tools.toolChanged.connect(lambda _t: self.prepare())
        manager.sessionChanged.connect(lambda _s: self.prepare())
        manager.annotatingChanged.connect(lambda _on: self.prepare())

    @property
    def pending(self) -> bool:
        """Whether clicks wait for Accept or Reject."""
        return bool(self.hints)

    # ------------------------------------------------------------------ the handler
    def press(self, session: EditSession, x: int, y: int, event: QMouseEvent) -> bool:
        """Start a click or scribble (left: positive, right or Shift+left: negative)."""
        button = event.button()
        if button not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return False
        h, w = session.labels.shape
        if event.type() == QEvent.Type.MouseButtonDblClick or not (0 <= x < w and 0 <= y < h):
            return True
        shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        self._positive = button == Qt.MouseButton.LeftButton and not shift
        under = int(session.labels[y, x])
        self._label = self.tools.cls if self._positive or under == VOID else under
        self._button, self._drag, self.busy = button, [(x, y)], True
        return True

    def move(self, x: int, y: int, event: QMouseEvent) -> None:
        """Extend a scribble."""
        if self._drag is not None and (x, y) != self._drag[-1]:
            self._drag.append((x, y))
            self.marks.set_hints([*self.hints, Hint(tuple(self._drag), self._positive)])

    def release(self, session: EditSession | None, x: int, y: int, event: QMouseEvent
                ) -> bool:
        """Finish the click or scribble and ask for a preview."""
        if self._drag is None or event.button() != self._button:
            return event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton)
        points, self._drag, self.busy = self._drag, None, False
        if session is not None:
            self.add(session, points, self._positive, self._label)
        return True

    def cancel(self) -> None:
        """Another tool, image or mask, or annotate off: drop the pending clicks."""
        self._drag, self.busy = None, False
        self.reject()

    # ------------------------------------------------------------------ clicks
    def _problem(self) -> str:
        """Why clicks cannot correct the shown mask ("" when they can)."""
        if self.state.document is None or self.models.loaded is None:
            return "Click correction needs a loaded model"
        if list(self.models.loaded.info.class_names) != mask_class_names(self.state):
            return ("Click correction needs a model with the mask's classes (this mask's "
                    "classes are not the model's)")
        return ""

    def _image_key(self) -> Any:
        doc = self.state.document
        return doc.path.resolve() if doc.path is not None else id(doc)

    def prepare(self) -> CorrectionJob | None:
        """With the tool chosen on a mask: compute the image's trunk features (and warm the
        optimizer up) in the correction thread before the first click."""
        from app.features.editing.correction_engine import CLICK_MAX_SIDE

        session, doc, loaded = self.manager.session, self.state.document, self.models.loaded
        if (self.tools.tool != OWNER or not self.manager.annotating or session is None
                or self._problem()):
            return None
        h, w = session.labels.shape
        box = (0, 0, w, h) if max(h, w) <= CLICK_MAX_SIDE else None
        wanted = (self._image_key(), loaded.model_id, box)
        if wanted == self._prepared:
            return None
        self._prepared = wanted
        return self.controller.submit("click_prepare", wanted[0], checkpoint=str(loaded.path),
                                      model_id=loaded.model_id, rgb=doc.image, box=box)

    def add(self, session: EditSession, points: list[tuple[int, int]], positive: bool,
            label: int) -> CorrectionJob | None:
        """Add a click (one point) or a scribble and preview in the correction thread."""
        from app.features.editing.correction_engine import click_box

        notify = self.manager.notifications.notify
        doc, loaded = self.state.document, self.models.loaded
        problem = self._problem()
        if problem:
            notify(problem, "warning")
            self.marks.set_hints(self.hints)
            return None
        x, y = points[-1]
        box = self.box or click_box(session.labels.shape, x, y)
        if not all(box[0] <= px < box[2] and box[1] <= py < box[3] for px, py in points):
            notify("Click inside the outlined square, or accept (Enter) or reject (Esc) "
                   "the clicks so far", "warning")
            self.marks.set_hints(self.hints)
            return None
        from core.refine.clicks import Click, Scribble

        if self.previews.pending and self.previews.owner != OWNER:
            self.previews.discard_pending()  # (one preview at a time)
        hint = Click(x, y, label, positive) if len(points) == 1 else \
            Scribble(tuple((float(px), float(py)) for px, py in points), label, positive,
                     SCRIBBLE_RADIUS)
        self.box, self._key = box, self._image_key()
        self.hints.append(Hint(tuple(points), positive))
        self.marks.set_hints(self.hints)
        h, w = session.labels.shape
        self.frame.setRect(QRectF(box[0], box[1], box[2] - box[0], box[3] - box[1]))
        self.frame.setVisible(box != (0, 0, w, h))
        self._revision = session.image.revision
        self._job = self.controller.submit(
            "click", self._key, checkpoint=str(loaded.path),
            model_id=loaded.model_id, rgb=doc.image, labels=session.labels.copy(), box=box,
            hint=hint, lut=mask_lut(self.state), opacity=self.state.overlay_opacity,
            session=session)
        text = "Correcting with the model…"
        if len(self.hints) == 1:
            text = "Correcting with the model (the first click on an image also runs its " \
                   "trunk)…"
        self.previews.offer(OWNER, text, accept=None, discard=self.reject,
                            images=self.result["images"] if self.result else None)
        self.host.show_progress(OWNER, "Click correction", -1.0)
        return self._job

    def _on_finished(self, job: CorrectionJob, result: Any) -> None:
        if job.kind != "click" or job is not self._job:
            return
        self._job = None
        self.host.hide_progress(OWNER)
        self.last_thread = result.thread
        value = result.value
        self.result = value
        count = int(value["region"].sum())
        first = " (with the trunk)" if value["first"] else ""
        clicks = f"{len(self.hints)} click{'s' if len(self.hints) != 1 else ''}"
        text = (f"{clicks}: {count:,} pixels change (outlined in cyan; "
                f"{result.seconds:.1f} s{first})" if count else
                f"{clicks}: no pixel changes yet: click again")
        self.previews.offer(OWNER, text, accept=self.accept if count else None,
                            discard=self.reject, images=value["images"])

    def _on_failed(self, job: CorrectionJob, message: str) -> None:
        if job.kind == "click" and job is self._job:
            self._job = None
            self.host.hide_progress(OWNER)
            self.manager.notifications.notify(message, "error")
            self.reject()

    def accept(self) -> bool:
        """Apply the preview as one undoable edit (its pixels count as corrected)."""
        value, session = self.result, self.manager.session
        if value is None or session is None or self._job is not None:
            return False
        if session.image.revision != self._revision:
            self._stale()
            return False
        x0, y0, x1, y1 = value["box"]
        new = session.labels.copy()
        part, region = new[y0:y1, x0:x1], value["region"]
        part[region] = value["labels"][region]
        self.controller.submit("click_accept", self._key)
        self._clear()
        edit = session.image.replace(new, label="click correction")
        if session.push(edit):
            self.manager.tools.edited.emit()
            return True
        return False

    def reject(self) -> None:
        """Forget the pending clicks and their preview."""
        if not self.hints and self._job is None and self.result is None:
            return
        self.controller.cancel(lambda j: j.kind == "click")
        self.controller.submit("click_reject", self._key)
        self._clear()

    def _clear(self) -> None:
        self.hints, self.box, self.result, self._job = [], None, None, None
        self.marks.set_hints([])
        self.frame.hide()
        self.host.hide_progress(OWNER)
        self.previews.clear(OWNER)

    def _stale(self) -> None:
        self.reject()
        self.manager.notifications.notify("The click correction was dropped: the mask "
                                          "changed meanwhile (click again)", "warning")

    def _check_stale(self) -> None:
        session = self.manager.session
        if self.hints and (session is None or session.image.revision != self._revision):
            self._stale()

    def _on_model(self, _loaded: object) -> None:
        """Another model: its corrections start over (the worker drops the old copy)."""
        self.reject()
        self._prepared = None
        if self.controller.running:
            self.controller.submit("forget", None)
        self.prepare()
