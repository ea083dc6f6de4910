"""A memory-bounded LRU of open documents, so that going back to an image is instant."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from app.state.document import ImageDocument

DEFAULT_BUDGET = 2 * 1024**3


class DocumentCache:
    """Documents by resolved path; the least recently used go first when over budget."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET) -> None:
        """Keep documents up to ``budget_bytes`` in total (the most recent one always stays)."""
        self.budget_bytes = budget_bytes
        self._docs: OrderedDict[Path, ImageDocument] = OrderedDict()

    @staticmethod
    def key(path: str | Path) -> Path:
        """The cache key of a path."""
        return Path(path).resolve()

    def get(self, path: str | Path) -> ImageDocument | None:
        """The document of ``path`` if cached (it becomes the most recent)."""
        key = self.key(path)
        doc = self._docs.get(key)
        if doc is not None:
            self._docs.move_to_end(key)
        return doc

    def put(self, doc: ImageDocument) -> None:
        """Add a document that has a path, then evict to the budget."""
        if doc.path is None:
            return
        self._docs[self.key(doc.path)] = doc
        self._docs.move_to_end(self.key(doc.path))
        self.trim()

    def trim(self) -> None:
        """Evict least recently used documents until within budget."""
        while len(self._docs) > 1 and self.nbytes() > self.budget_bytes:
            self._docs.popitem(last=False)

    def nbytes(self) -> int:
        """Memory held by all cached documents."""
        return sum(d.nbytes() for d in self._docs.values())

    def documents(self) -> list[ImageDocument]:
        """Cached documents, least recent first."""
        return list(self._docs.values())

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str | Path) and self.key(path) in self._docs

    def __len__(self) -> int:
        return len(self._docs)
