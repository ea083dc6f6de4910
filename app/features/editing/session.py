"""EditSession: the editable mask of one image, its undo stack and what has been saved."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from app.features.editing.journaling import Opener, SessionJournal
from app.features.editing.undo_commands import DEFAULT_UNDO_LIMIT, EditCommand, history_bytes


class EditSession(QObject):
    """An image's label mask being edited (a core LabelImage) with its QUndoStack.

    The corrected pixels (for fine-tuning on corrections only) are those that differ from
    the mask the session started from, plus those recorded as corrected when the mask was
    loaded from the project. A mask that is entirely the user's (loaded from a file or
    imported from labelme) counts as corrected everywhere.

    Every edit pushed, undone or redone is written to :attr:`journal` (the project's stroke
    journal of the image) right after it happens; a save clears it (:meth:`mark_saved`).

    Signals:
        dirtyChanged(bool): unsaved changes appeared or were saved.
    """

    dirtyChanged = Signal(bool)

    def __init__(
        self,
        path: Path | None,
        labels: np.ndarray,
        num_classes: int,
        source: str,
        *,
        whole: bool = False,
        prior: np.ndarray | None = None,
        unsaved: bool = False,
        journal_opener: Opener | None = None,
        notify: Callable[[str, str], Any] | None = None,
        parent: QObject | None = None,
    ) -> None:
        """Start editing a copy of ``labels``.

        Args:
            path: The image file (the key of the session).
            labels: ``H x W`` uint8 starting mask (255 = void).
            num_classes: The model's class count (painted labels are checked against it).
            source: What the mask started from, for the UI ("FCN-8s prediction", ...).
            whole: The whole mask is the user's annotation (every pixel counts as corrected).
            prior: Pixels already recorded as corrected (from the project), or None.
            unsaved: The starting mask itself is not saved yet (an import, a loaded file).
            journal_opener: Opens the image's stroke journal (see
                :class:`SessionJournal`); None: changes are not journaled.
            notify: ``notify(text, level)`` for the journal's messages.
        """
        super().__init__(parent)
        from core.annotation import LabelImage

        self.path = path
        self.image = LabelImage(labels, num_classes=num_classes)
        self.source = source
        self.whole = whole
        self.prior = prior
        self.save_error = ""
        self._unsaved = unsaved
        self._was_dirty = unsaved
        self.stack = QUndoStack(self)
        self.stack.setUndoLimit(DEFAULT_UNDO_LIMIT)
        self.stack.cleanChanged.connect(self._emit_dirty)
        self.journal = SessionJournal(path.name if path else "untitled",
                                      lambda: self.image.array, journal_opener, notify)

    @property
    def labels(self) -> np.ndarray:
        """The mask being edited (edit it only through the session's tools)."""
        return self.image.array

    @property
    def dirty(self) -> bool:
        """Whether the mask has changes that are not saved."""
        return self._unsaved or not self.stack.isClean()

    def push(self, edit: object | None, text: str = "", *, journaled: bool = False) -> bool:
        """Put an applied core Edit on the undo stack and journal it; False when ``edit``
        is None. ``journaled``: the edit is in the journal already (recovered strokes)."""
        if edit is None:
            return False
        self.stack.push(EditCommand(self.image, edit, text, self.journal.record,
                                    recorded=journaled))
        return True

    def restart(self, labels: np.ndarray, source: str, *, whole: bool = False) -> None:
        """Replace the mask (one undoable edit) and count corrections from the new start."""
        edit = self.image.replace(np.asarray(labels, np.uint8), label=f"start from {source}")
        self.push(edit)
        self.image.set_baseline()
        self.prior = None
        self.whole = whole
        self.source = source
        if whole:
            self._unsaved = True
            self._emit_dirty()

    def corrections(self) -> np.ndarray | bool:
        """Corrected pixels (bool ``H x W``), or True when the whole mask is the user's."""
        if self.whole:
            return True
        changed = self.image.corrected()
        return changed if self.prior is None else changed | self.prior

    def mark_saved(self) -> None:
        """Record that the current mask is saved (and clear its stroke journal)."""
        self.save_error = ""
        self._unsaved = False
        self.image.mark_saved()
        self.stack.setClean()
        self.journal.saved(self.image.array)
        self._emit_dirty()

    def history_bytes(self) -> int:
        """Memory held by the undo history."""
        return history_bytes(self.stack)

    def _emit_dirty(self, *_args: object) -> None:
        dirty = self.dirty
        if dirty != self._was_dirty:
            self._was_dirty = dirty
            self.dirtyChanged.emit(dirty)
