"""Each image's state in the training rounds, shown in the file list; held-out marks.

The Files dock shows, per image: an icon for its annotation state in the project (not
annotated, rough labels, corrected: :meth:`core.annotation.project.Project.image_state`),
✓ when the model in use has segmented it (its document holds that model's prediction),
and *held out* when it is scored before and after each round but never trained on. The
held-out mark is stored in the project; it is set from the image's context menu in the
file list or Model > Hold Out This Image.

The uncertainty rank of View > Next Image to Correct is not shown: the insight feature owns
those scores and features do not share state but through the app's context.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QPainter, QPen, QPixmap

from app.features.host import AppContext, WindowHost
from app.panels.file_list import FileList, FileMarks

PREDICTED, HELD_OUT = "✓", "held out"
LEGEND = (
    "Icons: ○ not annotated · ◔ rough labels (strokes; the rest void) · ● corrected "
    "mask. ✓ segmented by the model in use. 'held out': scored before and after "
    "training, never trained on (right-click to change)."
)
_STATE_TIPS = {
    "not annotated": "not annotated yet",
    "rough labels": "rough labels (strokes, the rest void: ignored by training)",
    "corrected": "corrected mask (trained on)",
}


def state_icon(state: str, size: int = 14) -> QIcon:
    """○ not annotated, ◔ rough labels, ● corrected (drawn, not a font's glyphs)."""
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    c = QPointF(size / 2, size / 2)
    r = size / 2 - 1.5
    green = QColor(40, 150, 70)
    if state == "corrected":
        p.setPen(QPen(green, 1.5))
        p.setBrush(green)
        p.drawEllipse(c, r, r)
    elif state == "rough labels":
        p.setPen(QPen(green, 1.5))
        p.drawEllipse(c, r, r)
        p.setBrush(green)
        p.drawPie(1.5, 1.5, 2 * r, 2 * r, 90 * 16, -100 * 16)
    else:
        p.setPen(QPen(QColor(150, 150, 150), 1.2))
        p.drawEllipse(c, r, r)
    p.end()
    return QIcon(pix)


class ImageStates(QObject):
    """Feeds the file list the images' states and held-out marks; sets the marks.

    Attributes:
        hold_action: Model > Hold Out This Image (checkable; the current image).

    Signals:
        heldOutChanged(): an image was marked as held out, or used for training again.
    """

    heldOutChanged = Signal()

    def __init__(self, context: AppContext, host: WindowHost, predicted: Any) -> None:
        """Give the window's file list its marks (``predicted``: a signal emitted when
        another image has a prediction of the model in use)."""
        super().__init__(host.widget())
        self.context, self.host = context, host
        self._icons = {s: state_icon(s) for s in _STATE_TIPS}
        self._docs: dict[Path, Any] = {}
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.refresh)
        window = host.widget()
        self.hold_action = QAction("&Hold Out This Image", window)
        self.hold_action.setCheckable(True)
        self.hold_action.setStatusTip(
            "Score this image before and after each training round and never train on it"
        )
        self.hold_action.triggered.connect(lambda on: self._hold_current(bool(on)))
        self.file_list: FileList | None = window.findChild(FileList)
        if self.file_list is not None:
            self.file_list.set_marks(self.marks, LEGEND)
            self.file_list.set_context_actions(self.context_actions)
        projects = context.projects
        for signal in (
            projects.projectChanged,
            projects.saved,
            projects.classesEdited,
            context.state.modelChanged,
            context.state.predictionChanged,
            context.state.documentChanged,
            predicted,
        ):
            signal.connect(self.schedule)
        self.refresh()

    # ------------------------------------------------------------------ what is shown
    def schedule(self, *_args: object) -> None:
        """Refresh once the event loop turns (many signals come together)."""
        self._timer.start()

    def refresh(self) -> None:
        """Show every image's marks again."""
        self._docs = {
            d.path.resolve(): d
            for d in self.context.documents.cache.documents()
            if d.path is not None
        }
        if self.file_list is not None:
            self.file_list.refresh_marks()
        doc = self.context.state.document
        held = doc is not None and doc.path is not None and self.is_held_out(doc.path)
        self.hold_action.setEnabled(
            doc is not None and doc.path is not None and self.context.projects.project is not None
        )
        self.hold_action.setChecked(held)

    def _image_id(self, path: Path, add: bool = False) -> str | None:
        projects = self.context.projects
        if projects.project is None or not (add or projects.contains(path)):
            return None
        return projects.image_id(path, add=add)

    def is_held_out(self, path: Path) -> bool:
        """Whether ``path`` is marked as held out in the open project."""
        image_id = self._image_id(path)
        return image_id is not None and self.context.projects.project.image(image_id).held_out

    def marks(self, path: Path) -> FileMarks | None:
        """The file list's marks of ``path`` (None: nothing known of it)."""
        project = self.context.projects.project
        tags: list[str] = []
        tips: list[str] = []
        icon = None
        image_id = self._image_id(path)
        if project is not None:
            state = project.image_state(image_id) if image_id is not None else "not annotated"
            icon = self._icons[state]
            tips.append(_STATE_TIPS[state])
        model_id = self.context.state.model_id
        doc = self._docs.get(path.resolve())
        if model_id and doc is not None and doc.prediction(model_id) is not None:
            tags.append(PREDICTED)
            tips.append(f"segmented by the model in use ({self.context.models.describe()})")
        if image_id is not None and project.image(image_id).held_out:
            tags.append(HELD_OUT)
            tips.append("held out: scored before and after training, never trained on")
        if icon is None and not tags:
            return None
        return FileMarks(icon, tuple(tags), "\n".join(tips))

    # ------------------------------------------------------------------ held out
    def context_actions(self, path: Path) -> list[QAction]:
        """The image's context menu: hold it out (or use it for training)."""
        if self.context.projects.project is None:
            return []
        action = QAction("Hold Out from Training", self.file_list)
        action.setCheckable(True)
        action.setChecked(self.is_held_out(path))
        action.setToolTip("Scored before and after each training round, never trained on")
        action.triggered.connect(lambda on: self.set_held_out(path, bool(on)))
        return [action]

    def _hold_current(self, on: bool) -> None:
        doc = self.context.state.document
        if doc is not None and doc.path is not None:
            self.set_held_out(doc.path, on)

    def set_held_out(self, path: Path, on: bool) -> bool:
        """Mark ``path`` as held out (or not) in the open project; False (with a message)
        when it cannot be."""
        from core.errors import FCNStudioError

        notes = self.context.notifications
        image_id = self._image_id(path, add=True)
        if image_id is None:
            notes.notify("Open or make a project first: held-out marks are kept in it", "warning")
            self.refresh()
            return False
        try:
            changed = self.context.projects.project.set_held_out(image_id, on)
        except FCNStudioError as exc:
            notes.notify(f"{path.name} not marked: {exc}", "error")
            self.refresh()
            return False
        if changed:
            notes.notify(
                f"{path.name} is held out: scored before and after training, never trained on"
                if on
                else f"{path.name} is used for training again"
            )
        self.refresh()
        if changed:
            self.heldOutChanged.emit()
        return True
