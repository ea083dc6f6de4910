"""SessionJournal: an editing session's changes written to the project's stroke journal.

Each finished edit (stroke, fill, polygon, restart...) is appended to the image's
:class:`core.annotation.journal.Journal` right after it is pushed on the undo stack, its
inverse after an undo and the edit again after a redo, so a crash between autosaves loses
at most the stroke in progress. After each successful save the journal is cleared (it then
begins again over the saved mask).

The journal is opened lazily: a session restored from the project gets its journal
already replayed (:meth:`SessionJournal.attach`); any other session opens it before its
first change and writes the whole mask as it was before that change as the journal's
start (a prediction, a mask file: whatever it started from), then the change, so the
journal always replays to the mask being edited and the recovered session counts the same
pixels as corrected.

A write that fails (full disk, read-only folder) never touches the mask in memory: a
message says so and journaling stops until the next successful save, because a journal
missing one change would replay a mask that never existed; the records before the failure
still replay to a state the mask really had. One append (fsync included) costs a few
milliseconds for an ordinary stroke, so it runs on the GUI thread after the stroke.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Opener = Callable[[bool], Any]
"""``opener(replay)``: the image's core Journal (replayed over the saved mask when
``replay``), None when the image cannot have one; raises on errors."""


def _errors() -> tuple[type[BaseException], ...]:
    from core.errors import FCNStudioError

    return (FCNStudioError, OSError, ValueError, RuntimeError)


class SessionJournal:
    """The stroke journal of one editing session (see the module docstring).

    Attributes:
        journal: The core Journal, in step with the session's mask; None until opened.
        off: Why journaling is off until the next successful save; empty while it is on.
    """

    def __init__(self, name: str, mask: Callable[[], np.ndarray],
                 opener: Opener | None = None,
                 notify: Callable[[str, str], Any] | None = None) -> None:
        """Journal the session of image ``name`` whose mask ``mask()`` gives.

        Args:
            name: The image's name, for messages.
            mask: The session's current mask.
            opener: Opens the image's journal; None: the session has none (not a file).
            notify: ``notify(text, level)`` for messages.
        """
        self.name = name
        self._mask = mask
        self._opener = opener
        self._notify = notify or (lambda text, level: None)
        self.journal: Any | None = None
        self.off = ""

    @property
    def active(self) -> bool:
        """Whether changes are being journaled now."""
        return self.journal is not None and not self.off

    def attach(self, journal: Any | None) -> None:
        """Use ``journal``, already replayed and in step with the session's mask."""
        self.journal, self.off = journal, ""

    def begin(self) -> None:
        """Journal the session's whole mask now (a start that is itself unsaved work)."""
        self._write(None, False)

    def record(self, edit: Any, undo: bool = False) -> None:
        """Journal an edit just applied (``undo``: just undone). Never raises."""
        self._write(edit, undo)

    def saved(self, mask: np.ndarray) -> None:
        """After a successful save of ``mask``: clear the journal (it begins over ``mask``)."""
        if self._opener is None:
            return
        try:
            if self.journal is None:
                self.journal = self._opener(False)
                if self.journal is None:
                    return
            self.journal.clear_after_save(mask)
        except _errors() as exc:
            self._stop(exc)
            return
        if self.off:
            self._notify(f"The stroke journal of {self.name} works again", "info")
        self.off = ""

    def detach(self) -> None:
        """Forget the journal and remove its file (the project changed: the session's
        strokes now belong to the new project, whose journal is opened next)."""
        journal, self.journal, self.off = self.journal, None, ""
        if journal is not None:
            try:
                journal.path.unlink(missing_ok=True)
            except OSError:
                pass  # its base is not that project's saved mask: it will be discarded

    def _write(self, edit: Any | None, undo: bool) -> None:
        if self.off or self._opener is None:
            return
        try:
            journal = self.journal
            if journal is None or edit is None:
                journal = journal or self._opener(True)
                if journal is None:
                    return
                mask = self._mask()
                if edit is not None:  # the start is the mask before this edit
                    mask = mask.copy()
                    mask[edit.bbox.slices][edit.footprint()] = edit.new if undo else edit.old
                journal.append((0, 0, mask.shape[1], mask.shape[0]), mask)
                self.journal = journal
            if edit is not None:
                journal.append_edit(edit, undo=undo)
        except _errors() as exc:
            self._stop(exc)

    def _stop(self, exc: BaseException) -> None:
        if not self.off:
            self._notify(
                f"Stroke journal of {self.name} stopped ({exc or type(exc).__name__}): your "
                "edits are kept and saved at the next autosave; crash recovery resumes "
                "after it", "warning")
        self.off = str(exc) or type(exc).__name__
