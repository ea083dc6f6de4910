"""Model file tasks in a worker thread: import (convert), download (and convert), ONNX export.

:class:`TaskWorker` lives in a QThread and never touches widgets; :class:`TaskRunner` is its
GUI-side owner: it queues tasks (one runs at a time), forwards progress and results as
signals and cancels downloads.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from app.workers.jobs import JobQueue
from app.workers.support import describe_error, lower_thread_priority
from app.workers.worker_thread import WorkerThread

IMPORT, DOWNLOAD, EXPORT = "import", "download", "export"
KINDS: tuple[str, ...] = (IMPORT, DOWNLOAD, EXPORT)
DOWNLOAD_TIMEOUT = 10.0
"""Seconds a stalled server may keep a download (and so closing the app) waiting."""


def size_text(n: int | None) -> str:
    """Bytes as a short human-readable size ("540.4 MB"); '?' when unknown."""
    if n is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


@dataclass(frozen=True)
class TaskResult:
    """A finished task: its kind, the file it produced and a user-facing sentence."""

    kind: str
    path: Path
    message: str
    source: Path | None = None


class TaskWorker(QObject):
    """Runs one task at a time in its thread.

    Signals:
        progress(int, float, str): job id, fraction done (negative: unknown), what it does.
        finished(int, object): job id and its :class:`TaskResult`.
        failed(int, str): job id and a user-facing message.
        cancelled(int, str): job id and what was kept.
    """

    progress = Signal(int, float, str)
    finished = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int, str)

    def __init__(self) -> None:
        """No state but the thread priority flag."""
        super().__init__()
        self._prioritized = False

    @Slot(int, str, object, object)
    def run(self, job: int, kind: str, args: dict, cancel: threading.Event) -> None:
        """Run the task ``kind`` ("import", "download" or "export") with ``args``."""
        if not self._prioritized:
            self._prioritized = True
            lower_thread_priority()
        from core.errors import Cancelled, FCNStudioError

        handler: Callable[..., TaskResult] = {
            IMPORT: self._import, DOWNLOAD: self._download, EXPORT: self._export,
        }[kind]
        try:
            result = handler(job, cancel=cancel, **args)
        except Cancelled as exc:
            self.cancelled.emit(job, str(exc))
            return
        except Exception as exc:
            if not isinstance(exc, FCNStudioError | OSError):
                traceback.print_exc()
            self.failed.emit(job, describe_error(exc, _CONTEXT[kind](args)))
            return
        self.finished.emit(job, result)

    def _import(self, job: int, *, src: Path, dest: Path, cancel: threading.Event) -> TaskResult:
        from core.checkpoints.convert import convert

        self.progress.emit(job, -1.0, f"Converting {src.name}…")
        dest.parent.mkdir(parents=True, exist_ok=True)
        info = convert(src, dest)
        self.progress.emit(job, 1.0, f"Converted {src.name}")
        return TaskResult(IMPORT, dest, f"Imported {src} as {dest} ({_kind(info)})", src)

    def _download(self, job: int, *, name: str, folder: Path,
                  cancel: threading.Event) -> TaskResult:
        from core.checkpoints import download

        entry = download.published(name)
        raw = folder / entry.filename
        last = [0.0]

        def report(done: int, total: int | None) -> None:
            now = time.monotonic()
            finished = total is not None and done >= total
            if not finished and now - last[0] < 0.1:
                return
            last[0] = now
            if finished:
                self.progress.emit(job, 1.0, f"Verifying and converting {entry.filename}…")
            else:
                fraction = done / total if total else -1.0
                self.progress.emit(job, fraction, f"Downloading {entry.filename}: "
                                   f"{size_text(done)} of {size_text(total)}")

        stage = "Converting" if raw.is_file() else "Connecting to get"
        self.progress.emit(job, -1.0, f"{stage} {entry.filename}…")
        path = download.fetch_published(name, convert=True, dest_dir=folder, progress=report,
                                        cancel=cancel.is_set, timeout=DOWNLOAD_TIMEOUT)
        return TaskResult(DOWNLOAD, path, f"Downloaded {entry.name} ({entry.url}) and converted "
                          f"it to {path}", raw)

    def _export(self, job: int, *, checkpoint: Path, out: Path,
                cancel: threading.Event) -> TaskResult:
        from core.checkpoints.onnx import export_onnx

        self.progress.emit(job, -1.0, f"Exporting {checkpoint.name} to ONNX…")
        path = export_onnx(checkpoint, out)
        return TaskResult(EXPORT, path, f"Exported {checkpoint.name} to ONNX: {path}", checkpoint)


def _kind(info: Any) -> str:
    variant = info.training.get("variant", "")
    at_once = " at-once" if info.config.scale_skips else ""
    net = f"FCN-{variant}{at_once}, " if variant else ""
    return f"{net}{info.num_classes} classes"


_CONTEXT: dict[str, Callable[[dict], str]] = {
    IMPORT: lambda a: f"Import of {a['src'].name} failed",
    DOWNLOAD: lambda a: f"Download of the published model {a['name']} failed",
    EXPORT: lambda a: f"ONNX export of {a['checkpoint'].name} failed",
}
"""The first words of a failed task's message (the core's own names the file)."""


@dataclass
class Task:
    """A queued or running task."""

    id: int
    kind: str
    args: dict
    cancel: threading.Event = field(default_factory=threading.Event)


class TaskRunner(QObject):
    """Queues model tasks for a :class:`TaskWorker` in its own thread (started on first use).

    Signals:
        started(int, str): job id and kind.
        progress(int, float, str): job id, fraction (negative: unknown), text.
        finished(int, object): job id and its :class:`TaskResult`.
        failed(int, str, str): job id, kind and a user-facing message.
        cancelled(int, str, str): job id, kind and what was kept.
        busyChanged(bool): whether a task is running.
    """

    started = Signal(int, str)
    progress = Signal(int, float, str)
    finished = Signal(int, object)
    failed = Signal(int, str, str)
    cancelled = Signal(int, str, str)
    busyChanged = Signal(bool)

    _do = Signal(int, str, object, object)

    def __init__(self, parent: QObject | None = None) -> None:
        """No thread until the first task."""
        super().__init__(parent)
        self._thread = WorkerThread(
            self, "fcn-model-tasks", TaskWorker,
            inbound={"run": self._do},
            outbound={"progress": self._on_progress, "finished": self._on_finished,
                      "failed": self._on_failed, "cancelled": self._on_cancelled},
        )
        self._jobs: JobQueue[Task] = JobQueue()
        self._next_id = 0

    @property
    def busy(self) -> bool:
        """Whether a task is running."""
        return self._jobs.busy

    def running(self) -> Task | None:
        """The running task, if any."""
        return self._jobs.running

    def submit(self, kind: str, **args: Any) -> int:
        """Queue a task; return its job id."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        self._next_id += 1
        self._jobs.add(Task(self._next_id, kind, args))
        self._pump()
        return self._next_id

    def cancel(self, job: int | None = None) -> bool:
        """Cancel a task (None: all); a running download stops at its next chunk."""
        had = self._jobs.drop(None if job is None else lambda t: t.id == job)
        run = self._jobs.running
        if run is not None and (job is None or run.id == job):
            run.cancel.set()
            return True
        return had

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Cancel everything and stop the thread (a conversion cannot be cut short)."""
        self.cancel()
        self._thread.shutdown(timeout_ms)

    def _pump(self) -> None:
        task = self._jobs.start_next()
        if task is None:
            return
        self._thread.ensure()
        self.busyChanged.emit(True)
        self.started.emit(task.id, task.kind)
        self._do.emit(task.id, task.kind, task.args, task.cancel)

    def _done(self) -> None:
        self.busyChanged.emit(False)
        self._pump()

    def _on_progress(self, job: int, fraction: float, text: str) -> None:
        if self._jobs.is_running(job):
            self.progress.emit(job, fraction, text)

    def _on_finished(self, job: int, result: object) -> None:
        if self._jobs.take(job) is not None:
            self.finished.emit(job, result)
            self._done()

    def _on_failed(self, job: int, message: str) -> None:
        task = self._jobs.take(job)
        if task is not None:
            self.failed.emit(job, task.kind, message)
            self._done()

    def _on_cancelled(self, job: int, message: str) -> None:
        task = self._jobs.take(job)
        if task is not None:
            self.cancelled.emit(job, task.kind, message)
            self._done()
