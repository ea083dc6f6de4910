"""Undo commands: one QUndoCommand per stroke, fill or replacement, wrapping a core Edit.

A :class:`core.annotation.labels.Edit` stores only its bounding box, the run-length
encoded footprint of the pixels it changed and their old and new values, so the undo
history of 200 brush strokes on a 4096x4096 mask stays at a few megabytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QUndoCommand, QUndoStack

DEFAULT_UNDO_LIMIT = 500
"""Commands kept per image; each holds only what its edit changed."""


class EditCommand(QUndoCommand):
    """An edit that has already been applied to its label image when it is pushed.

    With ``record`` (the session's journal), every application is journaled right after
    it happens: the push, each redo (``record(edit, False)``) and each undo
    (``record(edit, True)``). ``recorded``: the push itself is already in the journal
    (strokes recovered from it).
    """

    def __init__(self, image: Any, edit: Any, text: str = "",
                 record: Callable[[Any, bool], None] | None = None, *,
                 recorded: bool = False) -> None:
        """Wrap ``edit`` (a core Edit) of ``image`` (a core LabelImage)."""
        super().__init__(text or edit.label)
        self.image = image
        self.edit = edit
        self._record = record
        self._recorded = recorded
        self._applied = True  # push() calls redo(): the edit is already on the image

    def redo(self) -> None:
        """Apply the edit again (nothing to do the first time, when it is pushed)."""
        if self._applied:
            self._applied = False
            if self._record is not None and not self._recorded:
                self._record(self.edit, False)
            return
        self.image.redo(self.edit)
        if self._record is not None:
            self._record(self.edit, False)

    def undo(self) -> None:
        """Restore the old values of the edited pixels."""
        self.image.undo(self.edit)
        if self._record is not None:
            self._record(self.edit, True)

    @property
    def nbytes(self) -> int:
        """Memory held by the edit's arrays."""
        return int(self.edit.nbytes)


def history_bytes(stack: QUndoStack) -> int:
    """Bytes held by the edits of every command on ``stack`` (undo and redo sides)."""
    total = 0
    for i in range(stack.count()):
        cmd = stack.command(i)
        total += getattr(cmd, "nbytes", 0)
    return total
