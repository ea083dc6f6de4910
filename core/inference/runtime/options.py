"""The pure-Python parts of the runtime: backend choice strings, size buckets, an LRU cache
bounded by entries and bytes.

A backend choice is ``NAME`` or ``NAME:KEY=VALUE,KEY=VALUE`` (case-insensitive), e.g.
``eager``, ``torch:compile=1,bucket=64`` or ``onnxruntime-int8``. It comes from the
``backend`` argument of :class:`~core.inference.Segmenter` or, when that is None, from the
``FCN_STUDIO_BACKEND`` environment variable; the default is ``auto``.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Generic, TypeVar

__all__ = [
    "ALIASES",
    "BACKENDS",
    "ENV_VAR",
    "BackendSpec",
    "LRUCache",
    "MiB",
    "bucket_shape",
    "nbytes",
    "parse_backend",
    "parse_bool",
]

ENV_VAR = "FCN_STUDIO_BACKEND"
"""Environment variable naming the backend (``eager`` forces the plain PyTorch model)."""

BACKENDS: tuple[str, ...] = ("auto", "eager", "torch", "onnxruntime", "onnxruntime-int8")
"""The backend names :func:`parse_backend` accepts."""

ALIASES: dict[str, str] = {
    "": "auto",
    "default": "auto",
    "off": "eager",
    "none": "eager",
    "pytorch": "eager",
    "fast": "torch",
    "ort": "onnxruntime",
    "onnx": "onnxruntime",
    "ort-int8": "onnxruntime-int8",
    "int8": "onnxruntime-int8",
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class BackendSpec:
    """A parsed backend choice.

    Attributes:
        name: One of :data:`BACKENDS`.
        options: ``KEY=VALUE`` options, keys lower-case, values as written.
        source: Where the choice came from ("argument", the environment variable, "default").
    """

    name: str = "auto"
    options: dict[str, str] = field(default_factory=dict)
    source: str = "default"

    def __str__(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.name}:{opts}" if opts else self.name


def parse_backend(text: str | None = None) -> BackendSpec:
    """Parse a backend choice; None reads :data:`ENV_VAR` (unset or empty: ``auto``).

    Raises:
        ValueError: An unknown backend name or a malformed option.
    """
    source = "argument"
    if text is None:
        text = os.environ.get(ENV_VAR, "")
        source = ENV_VAR if text.strip() else "default"
    name, _, rest = text.strip().partition(":")
    name = name.strip().lower()
    name = ALIASES.get(name, name)
    if name not in BACKENDS:
        raise ValueError(
            f"Unknown backend {text.strip()!r} (from {source}); choose from {', '.join(BACKENDS)}"
        )
    options: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"Backend option {item!r} is not KEY=VALUE (in {text.strip()!r})")
        options[key.strip().lower()] = value.strip()
    return BackendSpec(name, options, source)


def parse_bool(value: str | bool, key: str = "option") -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case) as a bool.

    Raises:
        ValueError: Anything else.
    """
    if isinstance(value, bool):
        return value
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{key}={value!r} is not a boolean (use 1/0, true/false, on/off)")


def bucket_shape(height: int, width: int, multiple: int) -> tuple[int, int]:
    """``(height, width)`` rounded up to multiples of ``multiple`` (0 or 1: unchanged).

    Buckets bound the number of distinct input shapes, so cuDNN autotuning, compiled graphs
    and captured CUDA graphs are made once per bucket rather than once per image size.
    """
    if height < 1 or width < 1:
        raise ValueError(f"bad size {height}x{width}")
    if multiple <= 1:
        return height, width
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MiB = 1 << 20


def nbytes(value: object) -> int:
    """Bytes of the tensors and arrays held by ``value``, each buffer counted once.

    Counts torch tensors (their whole storage: a view holds all of it), NumPy arrays (their
    base buffer), ``bytes``, and whatever is inside dicts (values), lists, tuples, sets and
    dataclasses; other objects count through an integer ``nbytes`` attribute if they have
    one (e.g. a captured CUDA graph's buffers), else as 0. Duck-typed: imports neither torch
    nor NumPy.
    """
    buffers: set[tuple[str, int, int]] = set()
    visited: set[int] = set()

    def buffer(kind: str, ptr: int, size: int) -> int:
        key = (kind, ptr, size)
        if size <= 0 or key in buffers:
            return 0
        buffers.add(key)
        return size

    def walk(v: object) -> int:
        if v is None or isinstance(v, (bool, int, float, str)):
            return 0
        if isinstance(v, (bytes, bytearray)):
            return buffer("bytes", id(v), len(v))
        storage = getattr(v, "untyped_storage", None)
        if callable(storage):  # a torch tensor
            st = storage()
            return buffer(str(getattr(v, "device", "")), st.data_ptr(), st.nbytes())
        if hasattr(v, "__array_interface__") and hasattr(v, "base"):  # a NumPy array
            root = v
            while getattr(root, "base", None) is not None and hasattr(root.base, "base"):
                root = root.base
            if callable(getattr(root.base, "untyped_storage", None)):  # a tensor's memory
                return walk(root.base)
            return buffer("cpu", root.__array_interface__["data"][0], int(root.nbytes))
        if id(v) in visited:
            return 0
        visited.add(id(v))
        if isinstance(v, dict):
            return sum(walk(x) for x in v.values())
        if isinstance(v, (list, tuple, set, frozenset)):
            return sum(walk(x) for x in v)
        if is_dataclass(v):
            return sum(walk(getattr(v, f.name)) for f in fields(v))
        size = getattr(v, "nbytes", None)
        return buffer("obj", id(v), size) if isinstance(size, int) else 0

    return walk(value)


class LRUCache(Generic[K, V]):
    """A dict bounded by its entry count and, optionally, by bytes; least recently used
    entries go first.

    ``on_evict(key, value)``, if given, is called for each entry dropped to keep within the
    bounds (not by :meth:`clear`, nor for a value replaced under its own key). Safe to share
    between threads (module-level caches are used by inference and training threads).

    Args:
        capacity: At most this many entries (None: no count bound; then ``max_bytes`` must
            be given).
        on_evict: Called with each evicted entry, outside the lock.
        max_bytes: At most this many bytes of values, as ``size`` counts them (None: no byte
            bound). A value larger than this on its own is not stored (``on_evict`` is
            called for it, and the entries already there stay).
        size: ``size(value)``: a value's bytes (default :func:`nbytes`), measured once, when
            it is stored (also without ``max_bytes``, for :meth:`stats`).

    Raises:
        ValueError: A bound below 1, or no bound at all.
    """

    def __init__(self, capacity: int | None = None,
                 on_evict: Callable[[K, V], None] | None = None, *,
                 max_bytes: int | None = None,
                 size: Callable[[V], int] | None = None) -> None:
        if capacity is None and max_bytes is None:
            raise ValueError("an LRUCache needs a capacity, max_bytes or both")
        if capacity is not None and capacity < 1:
            raise ValueError(f"capacity must be positive, not {capacity}")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, not {max_bytes}")
        self.capacity = None if capacity is None else int(capacity)
        self._max_bytes = None if max_bytes is None else int(max_bytes)
        self.on_evict = on_evict
        self.size = size or nbytes
        self._data: OrderedDict[K, V] = OrderedDict()
        self._sizes: dict[K, int] = {}
        self._bytes = 0
        self._lock = threading.RLock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    @property
    def nbytes(self) -> int:
        """Bytes of the values held now."""
        return self._bytes

    @property
    def max_bytes(self) -> int | None:
        """The byte bound (None: none); setting a lower one evicts at once."""
        return self._max_bytes

    @max_bytes.setter
    def max_bytes(self, value: int | None) -> None:
        if value is not None and value < 1:
            raise ValueError(f"max_bytes must be positive, not {value}")
        with self._lock:
            self._max_bytes = None if value is None else int(value)
            evicted = self._evict_over()
        self._evicted(evicted)

    def _evict_over(self) -> list[tuple[K, V]]:
        """Pop the least recent entries beyond the bounds (with the lock held)."""
        evicted: list[tuple[K, V]] = []
        while self._data and (
            (self.capacity is not None and len(self._data) > self.capacity)
            or (self._max_bytes is not None and self._bytes > self._max_bytes)
        ):
            old_key, old = self._data.popitem(last=False)
            self._bytes -= self._sizes.pop(old_key, 0)
            evicted.append((old_key, old))
        self.evictions += len(evicted)
        return evicted

    def _evicted(self, evicted: list[tuple[K, V]]) -> None:
        """Tell ``on_evict`` (without the lock held)."""
        if self.on_evict is not None:
            for key, value in evicted:
                self.on_evict(key, value)

    def get(self, key: K) -> V | None:
        """The value of ``key`` (now the most recent), or None."""
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]
            self.misses += 1
            return None

    def put(self, key: K, value: V) -> None:
        """Store ``value``, evicting the oldest entries beyond the bounds."""
        size = int(self.size(value))
        with self._lock:
            self._bytes -= self._sizes.pop(key, 0)
            self._data.pop(key, None)
            if self._max_bytes is not None and size > self._max_bytes:
                evicted = [(key, value)]  # alone over the budget: not kept
                self.evictions += 1
            else:
                self._data[key] = value
                self._sizes[key] = size
                self._bytes += size
                evicted = self._evict_over()
        self._evicted(evicted)

    def get_or_create(self, key: K, make: Callable[[], V]) -> V:
        """The value of ``key``, made with ``make()`` and stored when missing."""
        value = self.get(key)
        if value is None:
            value = make()
            self.put(key, value)
        return value

    def clear(self) -> None:
        """Drop every entry (``on_evict`` is not called)."""
        with self._lock:
            self._data.clear()
            self._sizes.clear()
            self._bytes = 0

    def keys(self) -> list[K]:
        """Keys, least recent first."""
        with self._lock:
            return list(self._data)

    def stats(self) -> dict[str, int | None]:
        """Entries, bytes, bounds, hits, misses and evictions (for logs and benchmarks)."""
        with self._lock:
            return {"entries": len(self._data), "bytes": self._bytes,
                    "capacity": self.capacity, "max_bytes": self._max_bytes,
                    "hits": self.hits, "misses": self.misses, "evictions": self.evictions}

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[K]:
        return iter(self.keys())
