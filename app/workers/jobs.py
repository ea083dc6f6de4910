"""JobQueue: the queued jobs and the one running job of a controller that feeds a worker.

The controllers that run work one job at a time in a worker thread (inference, the model
set, model tasks) keep the same bookkeeping: a queue of pending jobs, the job running now,
and the worker's replies that must name the running job's id to count (a reply for a job
that was dropped or replaced meanwhile is ignored). This module holds that bookkeeping
without Qt; the controllers keep their signals and what is specific to each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class HasId(Protocol):
    """A job: anything with an ``id`` that the worker's replies name."""

    @property
    def id(self) -> int:
        """The job's id (unique within its queue)."""
        ...


J = TypeVar("J", bound=HasId)


class JobQueue(Generic[J]):
    """Jobs waiting in order and at most one running.

    Attributes:
        queue: The waiting jobs, the next one first.
        running: The job that runs now, or None.
    """

    def __init__(self) -> None:
        """Start empty."""
        self.queue: list[J] = []
        self.running: J | None = None

    @property
    def busy(self) -> bool:
        """Whether a job is running."""
        return self.running is not None

    def pending(self) -> list[J]:
        """The running job (if any), then the queued ones."""
        return [*([self.running] if self.running is not None else []), *self.queue]

    def add(self, job: J, *, first: bool = False) -> None:
        """Queue ``job`` last (``first``: next)."""
        if first:
            self.queue.insert(0, job)
        else:
            self.queue.append(job)

    def drop(self, predicate: Callable[[J], bool] | None = None) -> bool:
        """Remove the queued jobs that ``predicate`` holds for (None: all); the running one stays.

        Returns:
            Whether any job was removed.
        """
        kept = [] if predicate is None else [j for j in self.queue if not predicate(j)]
        removed = len(kept) != len(self.queue)
        self.queue = kept
        return removed

    def peek(self) -> J | None:
        """The job :meth:`start_next` would start: None while one runs or none is queued."""
        return self.queue[0] if self.running is None and self.queue else None

    def skip_next(self) -> J | None:
        """Remove the job :meth:`peek` names without running it, and return it."""
        return self.queue.pop(0) if self.peek() is not None else None

    def start_next(self) -> J | None:
        """Take the next queued job and mark it running, unless one runs; return it (or None)."""
        job = self.skip_next()
        if job is not None:
            self.running = job
        return job

    def running_job(self, job_id: int) -> J | None:
        """The running job if its id is ``job_id``, else None."""
        job = self.running
        return job if job is not None and job.id == job_id else None

    def is_running(self, job_id: int) -> bool:
        """Whether the job with id ``job_id`` runs now."""
        return self.running_job(job_id) is not None

    def take(self, job_id: int) -> J | None:
        """End the running job if its id is ``job_id`` and return it; else None (no change)."""
        job = self.running_job(job_id)
        if job is not None:
            self.running = None
        return job
