"""The pure-Python parts of the runtime: backend choice strings, size buckets, an LRU cache.

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
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = [
    "ALIASES",
    "BACKENDS",
    "ENV_VAR",
    "BackendSpec",
    "LRUCache",
    "bucket_shape",
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


class LRUCache(Generic[K, V]):
    """A dict holding at most ``capacity`` entries; the least recently used goes first.

    ``on_evict(key, value)``, if given, is called for each evicted entry. Safe to share
    between threads (module-level caches are used by inference and training threads).
    """

    def __init__(self, capacity: int, on_evict: Callable[[K, V], None] | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be positive, not {capacity}")
        self.capacity = int(capacity)
        self.on_evict = on_evict
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.RLock()
        self.hits = 0
        self.misses = 0

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
        """Store ``value``, evicting the oldest entries beyond the capacity."""
        evicted = []
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.capacity:
                evicted.append(self._data.popitem(last=False))
        if self.on_evict is not None:
            for old_key, old in evicted:
                self.on_evict(old_key, old)

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

    def keys(self) -> list[K]:
        """Keys, least recent first."""
        with self._lock:
            return list(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[K]:
        return iter(self.keys())
