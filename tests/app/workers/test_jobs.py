"""JobQueue: the queue-and-running-job bookkeeping of the worker controllers (no Qt)."""

from __future__ import annotations

from dataclasses import dataclass

from app.workers.jobs import JobQueue


@dataclass
class FakeJob:
    id: int
    kind: str = "predict"


@dataclass(frozen=True)
class FrozenJob:
    id: int


def queue_of(*ids: int) -> JobQueue[FakeJob]:
    jobs: JobQueue[FakeJob] = JobQueue()
    for i in ids:
        jobs.add(FakeJob(i))
    return jobs


def ids(jobs: list[FakeJob]) -> list[int]:
    return [j.id for j in jobs]


def test_empty_queue_starts_nothing() -> None:
    jobs: JobQueue[FakeJob] = JobQueue()
    assert not jobs.busy and jobs.running is None
    assert jobs.pending() == [] and jobs.peek() is None
    assert jobs.start_next() is None and jobs.skip_next() is None
    assert jobs.take(1) is None and not jobs.is_running(1)
    assert not jobs.drop()


def test_start_next_runs_the_first_job_and_only_one_at_a_time() -> None:
    jobs = queue_of(1, 2, 3)
    first = jobs.start_next()
    assert first is not None and first.id == 1
    assert jobs.busy and jobs.running is first and ids(jobs.queue) == [2, 3]
    assert jobs.start_next() is None  # one runs already: nothing changes
    assert jobs.running is first and ids(jobs.queue) == [2, 3]
    assert ids(jobs.pending()) == [1, 2, 3]  # the running job first


def test_add_first_puts_the_job_next() -> None:
    jobs = queue_of(1, 2)
    jobs.add(FakeJob(9), first=True)
    assert ids(jobs.queue) == [9, 1, 2]


def test_take_ends_only_the_running_job() -> None:
    jobs = queue_of(1, 2)
    job = jobs.start_next()
    assert jobs.is_running(1) and not jobs.is_running(2)
    assert jobs.running_job(2) is None and jobs.running_job(1) is job
    assert jobs.take(2) is None and jobs.running is job  # a stale or foreign id: no change
    assert jobs.take(1) is job
    assert not jobs.busy and jobs.take(1) is None  # a second reply for it is ignored
    nxt = jobs.start_next()
    assert nxt is not None and nxt.id == 2


def test_drop_removes_matching_queued_jobs_but_never_the_running_one() -> None:
    jobs: JobQueue[FakeJob] = JobQueue()
    for i, kind in enumerate(["load", "predict", "load", "predict"]):
        jobs.add(FakeJob(i, kind))
    jobs.start_next()  # job 0, a load, runs
    assert jobs.drop(lambda j: j.kind == "load")
    assert ids(jobs.queue) == [1, 3] and jobs.is_running(0)
    assert not jobs.drop(lambda j: j.kind == "load")  # none left to remove
    assert jobs.drop()
    assert jobs.queue == [] and jobs.is_running(0)
    assert not jobs.drop()


def test_peek_and_skip_next_leave_the_running_state_alone() -> None:
    jobs = queue_of(1, 2)
    head = jobs.peek()
    assert head is not None and head.id == 1
    assert jobs.skip_next() is head and not jobs.busy and ids(jobs.queue) == [2]
    jobs.start_next()
    assert jobs.peek() is None and jobs.skip_next() is None  # nothing next while one runs
    assert ids(jobs.queue) == []


def test_frozen_jobs_satisfy_the_protocol() -> None:
    jobs: JobQueue[FrozenJob] = JobQueue()
    jobs.add(FrozenJob(5))
    assert jobs.start_next() == FrozenJob(5)
    assert jobs.take(5) == FrozenJob(5)
