"""The job queue against real SQLite and real PostgreSQL.

Built directly from ``Database`` + ``JobQueue`` (not the full container) after migrating.
"""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from clarion.clock import Clock, FrozenClock, SystemClock
from clarion.errors import InvalidInput
from clarion.store.db import Database
from clarion.store.jobs import JobQueue, NewJob
from clarion.store.migrate import upgrade
from clarion.store.tables import jobs

pytestmark = pytest.mark.integration

MakeQueue = Callable[..., JobQueue]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def make_queue() -> AsyncIterator[MakeQueue]:
    made: list[JobQueue] = []

    def _make(on: Database, clock: Clock, *, lease_seconds: float = 30.0,
              max_attempts: int = 3, done_retention_seconds: float = 60.0) -> JobQueue:
        queue = JobQueue(on, clock, lease_seconds=lease_seconds, max_attempts=max_attempts,
                         done_retention_seconds=done_retention_seconds)
        made.append(queue)
        return queue

    try:
        yield _make
    finally:
        for queue in made:
            await queue.close()


@pytest.fixture
def queue(make_queue: MakeQueue, db: Database, clock: FrozenClock) -> JobQueue:
    return make_queue(db, clock)


async def _state(queue: JobQueue, job_id: int) -> tuple[str, int, int, str | None]:
    (info,) = [j for j in await queue.list_jobs(limit=1000) if j.id == job_id]
    return info.state, info.attempts, info.run_at_ms, info.last_error


async def test_round_trip_enqueue_claim_complete(queue: JobQueue, clock: FrozenClock) -> None:
    inserted = await queue.enqueue_now([NewJob("send", {"n": i}) for i in range(3)])
    assert inserted == 3
    assert (await queue.counts())["queued"] == 3

    claimed = await queue.claim(worker_id="w1", limit=10)
    assert sorted(j.payload["n"] for j in claimed) == [0, 1, 2]
    assert all(j.kind == "send" and j.attempts == 1 and j.max_attempts == 3 for j in claimed)
    infos = await queue.list_jobs(state="running")
    assert len(infos) == 3
    assert {i.run_at_ms for i in infos} == {clock.epoch_ms() + 30_000}  # the lease expiry
    assert await queue.claim(worker_id="w2", limit=10) == []  # leased: nobody else gets them

    await queue.complete([j.id for j in claimed])
    assert await queue.counts() == {"queued": 0, "running": 0, "done": 0, "dead": 0}


async def test_claim_respects_limit_kinds_and_order(queue: JobQueue, clock: FrozenClock) -> None:
    now = clock.epoch_ms()
    await queue.enqueue_now([
        NewJob("b", {"n": 1}, run_at_ms=now - 1000),
        NewJob("a", {"n": 2}, run_at_ms=now - 3000),
        NewJob("a", {"n": 3}, run_at_ms=now - 2000),
    ])
    assert await queue.claim(worker_id="w", limit=5, kinds=[]) == []
    only_b = await queue.claim(worker_id="w", limit=5, kinds={"b"})
    assert [j.payload["n"] for j in only_b] == [1]
    oldest = await queue.claim(worker_id="w", limit=1)
    assert [j.payload["n"] for j in oldest] == [2]  # earliest run_at first


async def test_unique_key_makes_enqueue_idempotent(queue: JobQueue, clock: FrozenClock) -> None:
    job = NewJob("register", {"id": "r1"}, unique_key="register:r1")
    assert await queue.enqueue_now([job, job]) == 1  # duplicate inside one call
    assert await queue.enqueue_now([job]) == 0
    mixed = [job, NewJob("register", {"id": "r2"}, unique_key="register:r2"), NewJob("x", {})]
    assert await queue.enqueue_now(mixed) == 2

    claimed = await queue.claim(worker_id="w", limit=10, kinds={"register"})
    await queue.complete([j.id for j in claimed])
    counts = await queue.counts()
    assert counts["done"] == 2  # keyed jobs are kept as done...
    assert await queue.enqueue_now([job]) == 0  # ...so the key still blocks a repeat

    clock.advance(61)  # past done_retention_seconds
    assert await queue.purge_done() == 2
    assert (await queue.counts())["done"] == 0
    assert await queue.enqueue_now([job]) == 1  # purged: the key is free again


async def test_enqueue_rolls_back_with_the_callers_transaction(
    queue: JobQueue, db: Database
) -> None:
    class Boom(Exception):
        pass

    async def enqueue_then_fail() -> None:
        async with db.write() as conn:
            assert await queue.enqueue(conn, [NewJob("x", {})]) == 1
            raise Boom

    with pytest.raises(Boom):
        await enqueue_then_fail()
    assert sum((await queue.counts()).values()) == 0
    started = time.monotonic()
    await queue.wait(0.3)  # no wake-up was sent for the rolled-back job
    assert time.monotonic() - started >= 0.25


async def test_future_run_at_is_not_claimed_until_due(queue: JobQueue, clock: FrozenClock) -> None:
    await queue.enqueue_now([NewJob("later", {}, run_at_ms=clock.epoch_ms() + 60_000)])
    assert await queue.claim(worker_id="w", limit=10) == []
    clock.advance(59)
    assert await queue.claim(worker_id="w", limit=10) == []
    clock.advance(1)
    assert len(await queue.claim(worker_id="w", limit=10)) == 1


async def test_fail_sets_run_at_from_retry_in_or_backoff(
    queue: JobQueue, clock: FrozenClock
) -> None:
    await queue.enqueue_now([NewJob("x", {})])
    (job,) = await queue.claim(worker_id="w", limit=1)
    now = clock.epoch_ms()
    assert await queue.fail(job, "provider said 429", retry_in_seconds=30) == "queued"
    state, attempts, run_at, error = await _state(queue, job.id)
    assert (state, attempts, run_at, error) == ("queued", 1, now + 30_000, "provider said 429")
    assert await queue.claim(worker_id="w", limit=1) == []
    clock.advance(30)
    (again,) = await queue.claim(worker_id="w", limit=1)
    assert again.id == job.id
    assert again.attempts == 2

    # Without an explicit delay: full-jitter backoff for attempt 2, i.e. within [0, 2 s].
    now = clock.epoch_ms()
    assert await queue.fail(again, "flaky") == "queued"
    _, _, run_at, _ = await _state(queue, job.id)
    assert now <= run_at <= now + 2_000


async def test_dead_after_max_attempts_then_retry(queue: JobQueue, clock: FrozenClock) -> None:
    await queue.enqueue_now([NewJob("x", {"k": 1}, max_attempts=2), NewJob("y", {"k": 2})])
    for expected in ("queued", "dead"):
        (job,) = await queue.claim(worker_id="w", limit=1, kinds={"x"})
        state = await queue.fail(job, f"attempt {job.attempts} failed", retry_in_seconds=0)
        assert state == expected
    (other,) = await queue.claim(worker_id="w", limit=1, kinds={"y"})
    assert await queue.fail(other, "bad payload", permanent=True) == "dead"  # first attempt

    dead = await queue.list_jobs(state="dead")
    assert {(d.kind, d.attempts, d.last_error) for d in dead} == {
        ("x", 2, "attempt 2 failed"), ("y", 1, "bad payload"),
    }
    assert await queue.claim(worker_id="w", limit=10) == []  # dead jobs are never claimed

    assert await queue.retry_dead(job_ids=[job.id, 999_999]) == 1
    (back,) = await queue.claim(worker_id="w", limit=10)
    assert back.id == job.id
    assert back.attempts == 1
    assert await queue.retry_dead() == 1  # all remaining dead ones
    assert (await queue.counts())["dead"] == 0


async def test_discard_deletes_only_dead_jobs(queue: JobQueue) -> None:
    await queue.enqueue_now([NewJob("x", {"k": i}) for i in range(3)])
    first, second = await queue.claim(worker_id="w", limit=2, kinds={"x"})
    for job in (first, second):
        assert await queue.fail(job, "bad payload", permanent=True) == "dead"
    assert await queue.discard_dead(job_ids=[first.id, 999_999]) == 1
    assert (await queue.counts())["dead"] == 1
    assert await queue.discard_dead() == 1
    counts = await queue.counts()
    assert (counts["dead"], counts["queued"]) == (0, 1)  # the queued one is untouched
    assert await queue.discard_dead() == 0


async def test_lease_takeover_after_expiry(
    make_queue: MakeQueue, db: Database, clock: FrozenClock
) -> None:
    queue = make_queue(db, clock, lease_seconds=10)
    await queue.enqueue_now([NewJob("x", {}), NewJob("y", {})])
    first = await queue.claim(worker_id="worker-a", limit=10)
    assert len(first) == 2
    clock.advance(9)
    await queue.extend_lease([j.id for j in first if j.kind == "y"])  # y is still being worked
    assert await queue.claim(worker_id="worker-b", limit=10) == []
    clock.advance(1.5)  # x's lease (10 s) has expired; y's was extended to 19 s

    (taken,) = await queue.claim(worker_id="worker-b", limit=10)
    assert taken.kind == "x"
    assert taken.attempts == 2
    # The first worker comes back late: its stale failure must not clobber the new claim.
    stale = next(j for j in first if j.kind == "x")
    await queue.fail(stale, "late", permanent=True)
    state, attempts, _, _ = await _state(queue, taken.id)
    assert (state, attempts) == ("running", 2)
    await queue.complete([taken.id])
    assert (await queue.counts())["running"] == 1  # only y remains


async def test_listing_counts_and_validation(queue: JobQueue) -> None:
    await queue.enqueue_now([NewJob("a", {"i": i}) for i in range(3)] + [NewJob("b", {})])
    listed = await queue.list_jobs(kind="a", limit=2)
    assert [j.payload["i"] for j in listed] == [2, 1]  # newest first, limited
    assert all(j.state == "queued" and j.last_error is None for j in listed)
    assert await queue.counts() == {"queued": 4, "running": 0, "done": 0, "dead": 0}
    with pytest.raises(InvalidInput, match="unknown job state"):
        await queue.list_jobs(state="zombie")
    with pytest.raises(InvalidInput, match="limit"):
        await queue.list_jobs(limit=0)


async def test_wait_returns_early_on_a_local_enqueue(queue: JobQueue) -> None:
    await queue.start()
    waiter = asyncio.create_task(queue.wait(10))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    started = time.monotonic()
    await queue.enqueue_now([NewJob("x", {})])
    await asyncio.wait_for(waiter, 5)
    assert time.monotonic() - started < 2


async def test_wait_is_woken_by_another_process_through_notify(
    pg_url: str, make_queue: MakeQueue
) -> None:
    await asyncio.to_thread(upgrade, pg_url)
    listener_db, other_db = Database(pg_url), Database(pg_url)
    try:
        listening = make_queue(listener_db, SystemClock())
        await listening.start()
        enqueuer = make_queue(other_db, SystemClock())  # no shared in-process wake-up
        waiter = asyncio.create_task(listening.wait(10))
        await asyncio.sleep(0.1)
        assert not waiter.done()
        started = time.monotonic()
        await enqueuer.enqueue_now([NewJob("x", {})])
        await asyncio.wait_for(waiter, 5)
        assert time.monotonic() - started < 2
    finally:
        await listener_db.dispose()
        await other_db.dispose()


async def test_listener_reconnects_after_its_connection_is_killed(
    pg_url: str, make_queue: MakeQueue
) -> None:
    await asyncio.to_thread(upgrade, pg_url)
    listener_db, other_db = Database(pg_url), Database(pg_url)
    try:
        listening = make_queue(listener_db, SystemClock())
        await listening.start()
        enqueuer = make_queue(other_db, SystemClock())
        async with other_db.write() as conn:
            killed = (await conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
            ))).scalars().all()
        assert killed == [True]
        await asyncio.wait_for(listening.wait(10), 5)  # woken on reconnect: look for missed jobs
        waiter = asyncio.create_task(listening.wait(10))
        await asyncio.sleep(0.1)
        await enqueuer.enqueue_now([NewJob("x", {})])
        await asyncio.wait_for(waiter, 5)
    finally:
        await listener_db.dispose()
        await other_db.dispose()


_CLAIMER = textwrap.dedent("""
    import asyncio, sys, time
    from pathlib import Path
    from clarion.clock import SystemClock
    from clarion.store.db import Database
    from clarion.store.jobs import JobQueue

    async def main(url: str, out: str, go: str) -> None:
        db = Database(url, pool_size=2)
        queue = JobQueue(db, SystemClock(), lease_seconds=300, max_attempts=3,
                         done_retention_seconds=0)
        async with db.read():
            pass
        Path(out + ".ready").touch()
        while not Path(go).exists():
            await asyncio.sleep(0.005)
        claimed = []
        while batch := await queue.claim(worker_id=Path(out).name, limit=20):
            claimed.extend(job.payload["n"] for job in batch)
            await queue.complete([job.id for job in batch])
        Path(out).write_text(" ".join(map(str, claimed)))
        await db.dispose()

    asyncio.run(main(*sys.argv[1:]))
""")


def _all_exist(paths: list[Path]) -> bool:
    return all(path.exists() for path in paths)


async def test_many_processes_share_the_work_exactly_once(
    pg_url: str, make_queue: MakeQueue, tmp_path: Path
) -> None:
    """SKIP LOCKED: four OS processes drain 2,000 jobs; each job is completed exactly once."""
    await asyncio.to_thread(upgrade, pg_url)
    database = Database(pg_url)
    try:
        queue = make_queue(database, SystemClock())
        assert await queue.enqueue_now([NewJob("x", {"n": n}) for n in range(2000)]) == 2000
        go = tmp_path / "go"
        outs = [tmp_path / f"claimer-{i}" for i in range(4)]
        procs = [await asyncio.create_subprocess_exec(
                     sys.executable, "-c", _CLAIMER, pg_url, str(out), str(go),
                     env={**os.environ, "PYTHONWARNINGS": "error"})
                 for out in outs]
        try:
            deadline = time.monotonic() + 60
            while not _all_exist([Path(f"{out}.ready") for out in outs]):
                assert all(p.returncode is None for p in procs), "a claimer process died"
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            go.touch()
            codes = [await asyncio.wait_for(p.wait(), 60) for p in procs]
        finally:
            for p in procs:
                if p.returncode is None:
                    p.kill()
                    await p.wait()
        assert codes == [0, 0, 0, 0]
        per_process = [[int(n) for n in out.read_text().split()] for out in outs]
        everything = [n for part in per_process for n in part]
        assert sorted(everything) == list(range(2000))  # all, and none twice
        assert sum(1 for part in per_process if part) >= 2  # the work really was shared
        async with database.read() as conn:
            assert (await conn.execute(select(func.count()).select_from(jobs))).scalar() == 0
    finally:
        await database.dispose()
