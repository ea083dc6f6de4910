"""WorkerThread: a QObject worker living in a QThread of its own, started on first use.

The controllers that queue work for a worker (inference, the model set, model tasks,
fine-tuning, the VOC export) share this plumbing: create the thread with a name, move the
worker to it, delete the worker when the thread ends, wire the signals both ways, and stop
it on close.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QObject, QThread, SignalInstance

W = TypeVar("W", bound=QObject)


class WorkerThread(Generic[W]):
    """A worker made by ``factory`` in a QThread named ``name`` (a child of ``parent``).

    Args:
        parent: The controller that owns the thread.
        name: The thread's object name (shown by debuggers and profilers).
        factory: Makes the worker (called in the GUI thread, once per started thread).
        inbound: Worker slot name -> the controller signal that drives it.
        outbound: Worker signal name -> the controller slot (or signal) it drives.

    Connections are made in the mappings' order, ``inbound`` first.
    """

    def __init__(self, parent: QObject, name: str, factory: Callable[[], W], *,
                 inbound: Mapping[str, SignalInstance],
                 outbound: Mapping[str, Callable[..., Any] | SignalInstance]) -> None:
        """Start nothing yet: see :meth:`ensure`."""
        self._parent, self._name, self._factory = parent, name, factory
        self._inbound, self._outbound = dict(inbound), dict(outbound)
        self._thread: QThread | None = None
        self._worker: W | None = None

    @property
    def running(self) -> bool:
        """Whether the thread was started (and not shut down)."""
        return self._thread is not None

    @property
    def worker(self) -> W | None:
        """The worker, while the thread runs."""
        return self._worker

    def ensure(self) -> W:
        """Start the thread and its worker unless they run already; return the worker."""
        if self._worker is not None:
            return self._worker
        thread = QThread(self._parent)
        thread.setObjectName(self._name)
        worker = self._factory()
        worker.moveToThread(thread)
        thread.finished.connect(worker.deleteLater)
        for slot, signal in self._inbound.items():
            signal.connect(getattr(worker, slot))
        for signal_name, target in self._outbound.items():
            getattr(worker, signal_name).connect(target)
        self._thread, self._worker = thread, worker
        thread.start()
        return worker

    def shutdown(self, timeout_ms: int) -> None:
        """Stop the thread's event loop, wait up to ``timeout_ms`` for it, drop both."""
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait(timeout_ms)
            self._thread = None
            self._worker = None
