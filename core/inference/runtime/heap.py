"""Process memory outside the runtime's own caches: oneDNN's primitive cache and freed heap.

Running many image sizes through one model grows a process in two places besides the
runtime's per-shape caches (which are bounded by entries and bytes, see
:class:`~core.inference.runtime.options.LRUCache`); ``benchmarks/memory_shapes.py`` measures
them and docs/benchmarks.md ("Memory over many image sizes") has the figures:

* **oneDNN's primitive cache.** PyTorch's CPU convolutions (and their weight reorders) are
  oneDNN primitives, JIT-compiled per shape and kept in a process-wide cache of 1024 by
  default: about 45 MB with the bundled model. :func:`configure` bounds it to
  :data:`PRIMITIVE_CACHE` through ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` unless that is set;
  importing :mod:`core.inference.runtime` calls it. oneDNN reads the variable once, when it
  makes its first primitive, so this holds when the runtime is imported before any
  convolution runs (:class:`~core.inference.Segmenter` and the training's fast path import
  it); set the variable yourself otherwise.
* **Freed memory glibc keeps.** Activations of every new size are allocated and freed; glibc
  serves them from its heap (its mmap threshold rises to the largest block freed), and the
  holes left between blocks of other sizes stay resident: after 1,000 random sizes most of
  the growth is free memory, which ``malloc_trim`` returns. :class:`HeapTrimmer` does that
  after a call when the resident anonymous memory grew by more than ``slack`` since the last
  trim, at most once per ``interval`` seconds: a trim takes 20-30 ms, and the next calls
  fault in again the pages it gave back that they reuse (about 110 MB over 128-256 px images,
  70 ms at 2.5 us a fault on the 2-core VM of docs/benchmarks.md).

``FCN_STUDIO_HEAP=off`` turns both off (``on``, the default, keeps them). Only Linux with glibc
trims; elsewhere :meth:`HeapTrimmer.after_call` does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
import time

from core.inference.runtime.options import MiB, parse_bool

__all__ = [
    "ENV_VAR",
    "PRIMITIVE_CACHE",
    "TRIMMER",
    "HeapTrimmer",
    "anon_bytes",
    "configure",
    "malloc_trim",
]

log = logging.getLogger(__name__)

ENV_VAR = "FCN_STUDIO_HEAP"
"""``off`` leaves oneDNN's primitive cache and glibc's heap as they are."""

PRIMITIVE_CACHE = 512
"""oneDNN primitives kept (its default is 1024; about 40 KB each with the bundled model). An
image looks up about 60 (convolutions, weight reorders, deconvolutions), so the sizes of a
tiled image or of a folder of photos stay compiled. Over 400 random sizes of 128-256 px it
kept 26 of the 39 MiB that 1024 held beyond 128, for 0.3 ms more compiling per image (256:
1.2 ms, 3% of a 42 ms image)."""

_ONEDNN_VAR = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"


def enabled() -> bool:
    """Whether :data:`ENV_VAR` leaves the process memory management on (the default)."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return True
    try:
        return parse_bool(value, ENV_VAR)
    except ValueError:
        log.warning("%s=%r is not on/off: on", ENV_VAR, value)
        return True


_configured = False


def configure() -> None:
    """Bound oneDNN's primitive cache (once per process; see the module docstring)."""
    global _configured
    if _configured:
        return
    _configured = True
    if enabled() and _ONEDNN_VAR not in os.environ and "DNNL_PRIMITIVE_CACHE_CAPACITY" not in (
            os.environ):
        os.environ[_ONEDNN_VAR] = str(PRIMITIVE_CACHE)


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.malloc_trim  # noqa: B018 - glibc only (musl has none)
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def malloc_trim() -> bool:
    """Return glibc's free heap memory to the system; False where there is no glibc."""
    if _LIBC is None:
        return False
    _LIBC.malloc_trim(ctypes.c_size_t(0))
    return True


def anon_bytes() -> int | None:
    """Resident anonymous memory of this process (``RssAnon``), None where not known."""
    try:
        with open("/proc/self/statm", "rb") as f:
            fields = f.read().split()
    except OSError:
        return None
    return (int(fields[1]) - int(fields[2])) * _PAGE  # resident - file-backed/shared


class HeapTrimmer:
    """Trims glibc's heap after calls that left it grown (see the module docstring).

    Args:
        slack: Bytes of anonymous memory growth since the last trim that trigger the next.
        interval: Seconds between trims at least. A trim with the page faults after it
            costs about 0.1 s; over 128-256 px images through the bundled model once a
            second cost about 10% of the time (42 trims in 56 s), once in 10 s about 2%
            at most, while the heap of such a run grows by a few MB a second once its sizes
            have been seen, so it stays within about ``slack`` plus that growth of
            ``interval`` above its live size. Images opened one by one are seconds apart:
            each call that left the heap ``slack`` larger trims.
    """

    def __init__(self, slack: int = 64 * MiB, interval: float = 10.0) -> None:
        self.slack = int(slack)
        self.interval = float(interval)
        self.trims = 0
        self.seconds = 0.0
        self._base: int | None = None
        self._last = float("-inf")
        self._lock = threading.Lock()

    def after_call(self) -> bool:
        """Trim if the heap grew enough since the last trim; True when it trimmed."""
        now = time.monotonic()
        if now - self._last < self.interval or _LIBC is None or not enabled():
            return False
        if not self._lock.acquire(blocking=False):
            return False  # another thread is checking
        try:
            anon = anon_bytes()
            if anon is None:
                return False
            if self._base is None or anon < self._base:
                self._base = anon
                return False
            if anon <= self._base + self.slack:
                return False
            start = time.perf_counter()
            malloc_trim()
            self.seconds += time.perf_counter() - start
            self.trims += 1
            self._last = time.monotonic()
            self._base = anon_bytes() or anon
            return True
        finally:
            self._lock.release()


TRIMMER = HeapTrimmer()
"""The process's trimmer, shared by every backend (the heap is process-wide)."""
