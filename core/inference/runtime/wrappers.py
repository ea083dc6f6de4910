"""Backends that route calls to other backends: by cost, by readiness, and with a fallback.

Each delegates its :attr:`~core.inference.runtime.backend.Backend.name`, notes and
description to the backend it routes to, through read-only properties.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence

import torch

from core.inference.memory import is_oom
from core.inference.runtime import heap
from core.inference.runtime.backend import Backend, EagerBackend, Scores, error_line
from core.inference.runtime.options import LRUCache
from core.variants import VARIANTS

__all__ = ["CostGate", "Delegating", "GuardedBackend", "Upgrade"]

log = logging.getLogger(__name__)


class Delegating(Backend):
    """A backend that sends calls to :attr:`active`: name, notes, description, what it
    accepts and what it releases follow that backend; its own notes come after."""

    def __init__(self, inner: Backend, notes: Sequence[str] = ()) -> None:
        super().__init__(inner.model, inner.device, notes)
        self.inner = inner

    @property
    def active(self) -> Backend:
        """The backend calls go to now."""
        return self.inner

    @property
    def name(self) -> str:
        return self.active.name

    @property
    def notes(self) -> list[str]:
        return [*self.inner.notes, *self._notes]

    @property
    def description(self) -> str:
        return self.active.description

    def accepts(self, x: torch.Tensor) -> bool:
        return self.inner.accepts(x)

    def release(self) -> None:
        self.inner.release()

    def caches(self) -> dict[str, LRUCache]:
        return self.inner.caches()

    def __call__(self, x: torch.Tensor, variants: Iterable[str] = VARIANTS) -> Scores:
        return self.active(x, variants)


class CostGate(Delegating):
    """Runs calls that cost less than ``min_macs`` eagerly, the others on ``fast``.

    For small calls an optimized path saves little in absolute terms and costs a one-time
    setup (an ONNX export, a proxy pass) that would dominate; the model as it is also gives
    bit-identical results there.

    Args:
        fast: The optimized backend.
        macs: ``macs(height, width)``: multiply-accumulates of one image of that size.
        min_macs: The threshold, per call (batch included).
    """

    def __init__(self, fast: Backend, macs: Callable[[int, int], float], min_macs: float) -> None:
        super().__init__(fast)
        self.eager = EagerBackend(fast.model, fast.device)
        self.macs = macs
        self.min_macs = float(min_macs)
        self._sizes: LRUCache[tuple[int, int], float] = LRUCache(64)

    @property
    def fast(self) -> Backend:
        """The optimized backend."""
        return self.inner

    @property
    def description(self) -> str:
        return f"{self.fast.description}; eager below {self.min_macs / 1e9:g} GMAC per call"

    def caches(self) -> dict[str, LRUCache]:
        return {**self.fast.caches(), "cost_gate.sizes": self._sizes}

    def uses_fast(self, x: torch.Tensor) -> bool:
        """Whether ``x`` goes to the fast backend."""
        h, w = int(x.shape[-2]), int(x.shape[-1])
        cost = self._sizes.get((h, w))
        if cost is None:
            cost = float(self.macs(h, w))
            self._sizes.put((h, w), cost)
        return cost * x.shape[0] >= self.min_macs

    def __call__(self, x: torch.Tensor, variants: Iterable[str] = VARIANTS) -> Scores:
        if self.uses_fast(x):
            return self.fast(x, variants)
        return self.eager(x, variants)


class Upgrade(Delegating):
    """Runs ``first`` until ``better`` is ready, then ``better``.

    After the first call, ``prepare()`` (an ONNX export and session build, seconds for a
    full-size model) runs in a background thread, so that no call waits for it. If it
    fails, or ``better`` fails later, the calls stay on ``first`` and :attr:`notes` says
    why.
    """

    def __init__(self, first: Backend, better: Backend, prepare: Callable[[], None]) -> None:
        super().__init__(first)
        self.better = better
        self._prepare = prepare
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failed: str | None = None

    @property
    def first(self) -> Backend:
        """The backend used until ``better`` is ready."""
        return self.inner

    @property
    def notes(self) -> list[str]:
        return [*self.first.notes, *self.better.notes, *self._notes]

    @property
    def active(self) -> Backend:
        return self.better if self._ready.is_set() and not self._failed else self.first

    @property
    def description(self) -> str:
        if self._failed:
            return self.first.description
        if self._ready.is_set():
            return self.better.description
        return f"{self.first.description}, then {self.better.description} once built"

    def release(self) -> None:
        self.first.release()
        if self._ready.is_set():
            self.better.release()

    def caches(self) -> dict[str, LRUCache]:
        return {**{f"{self.first.name}.{k}": v for k, v in self.first.caches().items()},
                **{f"{self.better.name}.{k}": v for k, v in self.better.caches().items()}}

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background preparation; True when ``better`` is in use."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self._ready.is_set() and not self._failed

    def _build(self) -> None:
        try:
            self._prepare()
        except Exception as exc:  # an export or runtime problem: keep the first backend
            self._failed = f"{self.better.name} not prepared ({error_line(exc)})"
            self._notes.append(f"{self._failed}: staying on {self.first.name}")
            log.warning("%s: staying on %s", self._failed, self.first.name)
        finally:
            self._ready.set()

    def __call__(self, x: torch.Tensor, variants: Iterable[str] = VARIANTS) -> Scores:
        if self._ready.is_set() and not self._failed:
            try:
                return self.better(x, variants)
            except Exception as exc:
                if is_oom(exc):
                    raise
                self._failed = f"{self.better.name} failed ({error_line(exc)})"
                self._notes.append(f"{self._failed}: back to {self.first.name}")
                log.warning("%s: back to %s", self._failed, self.first.name)
        out = self.first(x, variants)
        if self._thread is None:
            self._thread = threading.Thread(target=self._build, name="fcn-backend-prepare",
                                            daemon=True)
            self._thread.start()
        return out


class GuardedBackend(Delegating):
    """A backend that falls back to eager, with a logged reason, when it cannot run.

    Inputs it does not accept (another device after an out-of-memory move to the CPU, a
    model in training mode) run eagerly for that call. An error other than out-of-memory
    switches to eager for good and records why in :attr:`notes`; out-of-memory errors
    propagate (the caller retries smaller) after the primary's caches are released.

    Args:
        primary: The chosen backend.
        notes: Why the choice left features out (said before the primary's own notes).
    """

    def __init__(self, primary: Backend, notes: Sequence[str] = ()) -> None:
        super().__init__(primary)
        self.eager = EagerBackend(primary.model, primary.device)
        self.failed = False
        self._before = list(notes)

    @property
    def primary(self) -> Backend | None:
        """The chosen backend, or None once it failed."""
        return None if self.failed else self.inner

    @property
    def notes(self) -> list[str]:
        """Why features were left out: at selection, by the backend, after failures."""
        return [*self._before, *self.inner.notes, *self._notes]

    @property
    def active(self) -> Backend:
        return self.eager if self.failed else self.inner

    def accepts(self, x: torch.Tensor) -> bool:
        return True

    def release(self) -> None:
        if not self.failed:
            self.inner.release()

    def __call__(self, x: torch.Tensor, variants: Iterable[str] = VARIANTS) -> Scores:
        primary = self.primary
        if primary is None or not primary.accepts(x):
            return self.eager(x, variants)
        try:
            out = primary(x, variants)
        except Exception as exc:
            if is_oom(exc):
                primary.release()
                raise
            self.failed = True
            primary.release()
            message = f"{primary.description} failed ({error_line(exc)}); using eager"
            self._notes.append(message)
            log.warning("%s", message)
            return self.eager(x, variants)
        heap.TRIMMER.after_call()
        return out
