"""The worker loop over a real queue (SQLite and PostgreSQL): outcomes, leases, stopping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest

from clarion.clock import SystemClock
from clarion.errors import RetryLater
from clarion.store.db import Database
from clarion.store.job_operations import JobInfo
from clarion.store.jobs import Job, JobQueue, NewJob
from clarion.store.migrate import upgrade
from clarion.worker.loop import Bounded, Handler, Worker

pytestmark = pytest.mark.integration


@pytest.fixture
async def queue(db_url: str) -> AsyncIterator[JobQueue]:
    await asyncio.to_thread(upgrade, db_url)
    db = Database(db_url)
    q = JobQueue(db, SystemClock(), lease_seconds=30, max_attempts=3, done_retention_seconds=60)
    await q.start()
    try:
        yield q
    finally:
        await q.close()
        await db.dispose()


async def _until(predicate: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


class Running:
    """A worker run in the background, stopped (and awaited) on exit."""

    def __init__(self, worker: Worker) -> None:
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(worker.run(self.stop))

    async def __aenter__(self) -> Running:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)


def _worker(queue: JobQueue, handlers: dict[str, Handler], **kw: float) -> Worker:
    options: dict[str, float] = {"concurrency": 2, "batch_size": 10, "poll_seconds": 0.1}
    options.update(kw)
    return Worker(queue, handlers, concurrency=int(options["concurrency"]),
                  batch_size=int(options["batch_size"]), poll_seconds=options["poll_seconds"])


async def _all(queue: JobQueue) -> list[JobInfo]:
    return await queue.list_jobs(limit=1000)


async def test_success_completes_in_batches_per_kind(queue: JobQueue) -> None:
    seen: list[tuple[str, list[int]]] = []

    def recorder(kind: str) -> Handler:
        async def handle(batch: Sequence[Job]) -> None:
            assert all(job.kind == kind for job in batch)
            seen.append((kind, [job.payload["n"] for job in batch]))

        return handle

    await queue.enqueue_now([NewJob("a", {"n": n}) for n in range(7)]
                            + [NewJob("b", {"n": 100})])
    async with Running(_worker(queue, {"a": recorder("a"), "b": recorder("b")})):
        await _until(lambda: _empty(queue))
    assert sorted(n for _, ns in seen for n in ns) == [*range(7), 100]
    assert len(seen) == 2  # one handler call per kind: the batch was claimed at once


async def _empty(queue: JobQueue) -> bool:
    return sum((await queue.counts()).values()) == 0


async def test_retry_later_requeues_with_its_delay(queue: JobQueue) -> None:
    async def handle(batch: Sequence[Job]) -> None:
        raise RetryLater("APNs answered 429", delay_seconds=120)

    await queue.enqueue_now([NewJob("a", {}), NewJob("a", {})])
    before = SystemClock().epoch_ms()
    async with Running(_worker(queue, {"a": handle})):
        await _until(lambda: _states(queue, {"queued"}, attempts=1))
    for info in await _all(queue):
        assert before + 119_000 <= info.run_at_ms <= SystemClock().epoch_ms() + 120_000
        assert info.last_error is not None
        assert "APNs answered 429" in info.last_error


async def _states(queue: JobQueue, states: set[str], *, attempts: int) -> bool:
    infos = await _all(queue)
    return bool(infos) and all(i.state in states and i.attempts == attempts for i in infos)


async def test_other_exceptions_dead_letter_with_the_traceback(queue: JobQueue) -> None:
    async def handle(batch: Sequence[Job]) -> None:
        raise ValueError("payload has no 'ids'")

    await queue.enqueue_now([NewJob("a", {})])
    async with Running(_worker(queue, {"a": handle})):
        await _until(lambda: _states(queue, {"dead"}, attempts=1))
    (info,) = await _all(queue)
    assert info.last_error is not None
    assert info.last_error.startswith("ValueError: payload has no 'ids'")
    assert "in handle" in info.last_error  # the frame that raised


async def test_lost_connection_is_retried_not_dead_lettered(queue: JobQueue) -> None:
    calls: list[tuple[int, dict[str, object]]] = []

    async def handle(batch: Sequence[Job]) -> None:
        (job,) = batch
        calls.append((job.attempts, job.payload))
        if len(calls) == 1:
            raise ConnectionResetError("connection reset by peer")

    await queue.enqueue_now([NewJob("a", {"k": "v"})])
    async with Running(_worker(queue, {"a": handle})):
        await _until(lambda: _empty(queue), within=8)  # backoff for attempt 1 is <= 1 s
    assert calls == [(1, {"k": "v"}), (2, {"k": "v"})]


async def test_idle_worker_wakes_on_enqueue_and_stops_promptly(queue: JobQueue) -> None:
    done = asyncio.Event()

    async def handle(batch: Sequence[Job]) -> None:
        done.set()

    async with Running(_worker(queue, {"a": handle}, poll_seconds=30)) as running:
        await asyncio.sleep(0.2)  # the worker is now asleep in queue.wait(30)
        started = time.monotonic()
        await queue.enqueue_now([NewJob("a", {})])
        await asyncio.wait_for(done.wait(), 5)
        assert time.monotonic() - started < 2
        stop_started = time.monotonic()
        running.stop.set()
        await asyncio.wait_for(running.task, 5)
        assert time.monotonic() - stop_started < 2


async def test_stop_finishes_in_flight_batches(queue: JobQueue) -> None:
    started = asyncio.Event()

    async def slow(batch: Sequence[Job]) -> None:
        started.set()
        await asyncio.sleep(0.5)

    await queue.enqueue_now([NewJob("a", {})])
    running = Running(_worker(queue, {"a": slow}))
    await asyncio.wait_for(started.wait(), 5)
    running.stop.set()
    await asyncio.wait_for(running.task, 5)
    assert await _empty(queue)  # completed, not abandoned


async def test_long_batches_keep_their_lease(db_url: str) -> None:
    await asyncio.to_thread(upgrade, db_url)
    db = Database(db_url)
    queue = JobQueue(db, SystemClock(), lease_seconds=0.6, max_attempts=3,
                     done_retention_seconds=60)
    stolen: list[Job] = []

    async def slow(batch: Sequence[Job]) -> None:
        for _ in range(15):  # 1.5 s: more than twice the lease
            stolen.extend(await queue.claim(worker_id="thief", limit=10))
            await asyncio.sleep(0.1)

    try:
        await queue.enqueue_now([NewJob("a", {})])
        async with Running(_worker(queue, {"a": slow})):
            await _until(lambda: _empty(queue), within=8)
        assert stolen == []
    finally:
        await db.dispose()


async def test_concurrency_bounds_batches_in_flight(queue: JobQueue) -> None:
    in_flight = 0
    peak = 0

    async def handle(batch: Sequence[Job]) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1

    await queue.enqueue_now([NewJob("a", {"n": n}) for n in range(40)])
    async with Running(_worker(queue, {"a": handle}, concurrency=3, batch_size=2)):
        await _until(lambda: _empty(queue))
    assert peak == 3


async def test_bounded_handler_gets_at_most_max_jobs_and_claims_only_for_free_slots(
    queue: JobQueue,
) -> None:
    """A Bounded kind (delivery) is split into calls of at most max_jobs, and a worker holds
    at most concurrency × max_jobs of its jobs: the rest stays queued for other workers."""
    release = asyncio.Event()
    calls: list[list[int]] = []
    other: list[list[int]] = []

    async def handle(batch: Sequence[Job]) -> None:
        calls.append([job.payload["n"] for job in batch])
        await release.wait()

    async def handle_other(batch: Sequence[Job]) -> None:
        other.append([job.payload["n"] for job in batch])

    await queue.enqueue_now([NewJob("big", {"n": n}) for n in range(20)]
                            + [NewJob("small", {"n": n}) for n in range(5)])
    worker = _worker(queue, {"big": Bounded(handle, max_jobs=3), "small": handle_other},
                     concurrency=3, batch_size=100)
    async with Running(worker):
        await _until(lambda: _has(calls, 3))  # 3 slots, each running a call of 3 jobs
        await asyncio.sleep(0.3)  # the worker is full: it claims nothing more
        counts = await queue.counts()
        assert counts["running"] == 9 and counts["queued"] == 11, counts
        assert len(calls) == 3 and all(len(c) == 3 for c in calls)
        assert other == [[0, 1, 2, 3, 4]]  # unbounded kinds keep their one batch per claim
        release.set()
        await _until(lambda: _empty(queue))
    assert sorted(n for c in calls for n in c) == list(range(20))
    assert all(1 <= len(c) <= 3 for c in calls)


async def _has(calls: list[list[int]], n: int) -> bool:
    return len(calls) >= n


def test_bounded_needs_at_least_one_job(queue: JobQueue) -> None:
    async def handle(batch: Sequence[Job]) -> None:
        return None

    with pytest.raises(ValueError, match="max_jobs"):
        _worker(queue, {"a": Bounded(handle, max_jobs=0)})
