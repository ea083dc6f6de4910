"""Navigator: the list of images being browsed, and opening them as documents."""

from __future__ import annotations

import os
from collections.abc import Iterable

from PySide6.QtCore import QObject, Signal

from app.common.files import ImageEntry, scan
from app.state.doc_cache import DocumentCache
from app.state.document import ImageDocument


class Navigator(QObject):
    """Holds the file list and the current position; opens documents through a cache.

    Signals:
        listingChanged(): the file list was replaced.
        currentChanged(int): the current index changed.
        documentOpened(object): the current document (None when the file could not be read).
        problem(str, str): level and user-facing text of something that went wrong.
    """

    listingChanged = Signal()
    currentChanged = Signal(int)
    documentOpened = Signal(object)
    problem = Signal(str, str)

    def __init__(self, cache: DocumentCache | None = None, parent: QObject | None = None):
        """Start with an empty list."""
        super().__init__(parent)
        self.cache = cache or DocumentCache()
        self.entries: list[ImageEntry] = []
        self.class_names: list[str] | None = None
        self.index = -1

    def open_paths(self, paths: Iterable[str | os.PathLike[str]], *, add: bool = False) -> bool:
        """List the images of files and folders and open the first new one.

        Args:
            paths: Files and folders.
            add: Append to the current list instead of replacing it.

        Returns:
            Whether any image was found.
        """
        listing = scan(paths)
        for text in listing.problems or []:
            self.problem.emit("warning", text)
        if not listing.entries:
            return False
        first = len(self.entries) if add else 0
        if add:
            known = {e.image for e in self.entries}
            self.entries += [e for e in listing.entries if e.image not in known]
        else:
            self.entries = list(listing.entries)
        self.class_names = listing.class_names or self.class_names
        self.listingChanged.emit()
        self.go(min(first, len(self.entries) - 1))
        return True

    @property
    def current(self) -> ImageEntry | None:
        """The current entry."""
        return self.entries[self.index] if 0 <= self.index < len(self.entries) else None

    def go(self, index: int) -> ImageDocument | None:
        """Open entry ``index``; an unreadable file is reported and gives no document."""
        if not 0 <= index < len(self.entries):
            return None
        self.index = index
        self.currentChanged.emit(index)
        entry = self.entries[index]
        doc = self.cache.get(entry.image)
        if doc is None:
            doc = self._load(entry)
        self.documentOpened.emit(doc)
        return doc

    def next(self) -> None:
        """Open the next image (stays at the last)."""
        if self.index + 1 < len(self.entries):
            self.go(self.index + 1)

    def previous(self) -> None:
        """Open the previous image (stays at the first)."""
        if self.index > 0:
            self.go(self.index - 1)

    def _load(self, entry: ImageEntry) -> ImageDocument | None:
        from core.errors import FCNStudioError

        try:
            doc, warning = ImageDocument.load(entry.image, entry.mask)
        except (FCNStudioError, OSError, ValueError, MemoryError) as exc:
            self.problem.emit("error", str(exc) or f"Cannot read {entry.image}")
            return None
        if warning:
            self.problem.emit("warning", warning)
        self.cache.put(doc)
        return doc
