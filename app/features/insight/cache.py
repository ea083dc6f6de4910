"""ByteLRU: a least-recently-used cache bounded by the bytes of what it holds (Qt-free).

The insight worker keeps trunk features and stream decompositions in one, the feature keeps
the results it has shown in another, so going back to an image or a map costs nothing as
long as it fits.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ByteLRU(Generic[K, V]):
    """Values by key, the least recently used dropped first once ``budget`` bytes are held.

    Args:
        budget: The most bytes held together (a value larger than this is not kept).
        size_of: The bytes of one value.
        max_items: Also at most this many values (None: no limit).
    """

    def __init__(self, budget: int, size_of: Callable[[V], int],
                 max_items: int | None = None) -> None:
        """Start empty."""
        self.budget = int(budget)
        self.max_items = max_items
        self._size_of = size_of
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self.nbytes = 0

    def get(self, key: K) -> V | None:
        """The value of ``key`` (now the most recently used), or None."""
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: K, value: V) -> bool:
        """Keep ``value`` under ``key``, dropping the least recently used beyond the budget.

        Returns:
            Whether it is kept (False: larger than the whole budget).
        """
        self.pop(key)
        size = int(self._size_of(value))
        if size > self.budget:
            return False
        self._items[key] = (value, size)
        self.nbytes += size
        while self._items and (self.nbytes > self.budget or (
                self.max_items is not None and len(self._items) > self.max_items)):
            _, (_, dropped) = self._items.popitem(last=False)
            self.nbytes -= dropped
        return key in self._items

    def pop(self, key: K) -> V | None:
        """Remove ``key``; return its value (None when absent)."""
        item = self._items.pop(key, None)
        if item is None:
            return None
        self.nbytes -= item[1]
        return item[0]

    def drop(self, predicate: Callable[[K], bool]) -> int:
        """Remove every key ``predicate`` holds for; return how many."""
        keys = [k for k in self._items if predicate(k)]
        for key in keys:
            self.pop(key)
        return len(keys)

    def clear(self) -> None:
        """Remove everything."""
        self._items.clear()
        self.nbytes = 0

    def keys(self) -> list[K]:
        """The keys, least recently used first."""
        return list(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


def deep_nbytes(obj: object) -> int:
    """The bytes of the numpy arrays in ``obj`` (dataclasses, dicts, lists and tuples
    followed)."""
    import numpy as np

    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(obj, dict):
        return sum(deep_nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(deep_nbytes(v) for v in obj)
    fields = getattr(obj, "__dataclass_fields__", None)
    if fields:
        return sum(deep_nbytes(getattr(obj, f)) for f in fields)
    return 0
