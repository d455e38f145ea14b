"""Group commit: many small writes from concurrent requests, one transaction.

The hot accept paths (device registration, later interaction events) must not pay one
transaction per request (~1 ms through SQLAlchemy async on SQLite, and the single writer would
serialise them). Requests hand their rows to ``GroupCommitWriter.submit`` and wait; one task
drains whatever is waiting (up to ``max_rows`` rows), inserts it with one ``executemany`` per
table inside one transaction and wakes every waiter once the transaction has committed. A
request is answered only after its rows are committed, so an accepted request is never lost
(on SQLite, to a power loss too with the default ``CLARION_SQLITE_SYNCHRONOUS=full``).

A submission may name a *batch* of a task (``clarion.store.tasks``): instead of one job per
request, each commit enqueues one job per task carrying the items of every submission in it
(``{"ids": [...]}``, in submission order, their number in ``jobs.items``), so the worker also
processes them in batches. Such a
submission is refused with ``Overloaded`` while the backlog of waiting items is at
``CLARION_MAX_BACKLOG`` (``clarion.store.backlog``). An item is usually the id of a row of
the same commit; it may be any JSON value (a request small enough to ride in the job itself:
untracked registrations, interaction reports), and a submission may then have no rows at all:
its items weigh against ``max_rows``.

If a batch fails on its data (a constraint, a bad value), it is split in halves and each half
retried, down to single submissions, so one bad request fails alone and costs about
``2 * log2(batch)`` extra transactions instead of one per submission. A lost database fails the
whole batch at once: retrying halves against a dead server would only multiply the wait.

A request waits at most the database's write timeout (``CLARION_DB_WRITE_TIMEOUT_SECONDS``)
from its submission: a commit may wait for the database only as long as its oldest submission
has left, and a submission whose time ran out while it queued behind a blocked commit fails
with ``DatabaseUnavailable`` before it is tried. Either way it was not committed, so its 503
is true.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, insert

from clarion.store.availability import Unavailability, unavailable_error
from clarion.store.backlog import Backlog
from clarion.store.db import Database, is_connection_lost
from clarion.store.jobs import JobQueue, NewJob
from clarion.store.tasks import Batch

log = logging.getLogger(__name__)



@dataclass
class _Submission:
    rows: Sequence[tuple[Table, Sequence[dict[str, Any]]]]
    batch: Batch | None
    future: asyncio.Future[None] = field(repr=False)
    deadline: float = 0.0  # time.monotonic() by which it must be committed or refused

    @property
    def size(self) -> int:
        return (sum(len(r) for _, r in self.rows)
                or (len(self.batch.items) if self.batch else 0) or 1)


class GroupCommitWriter:
    def __init__(self, db: Database, queue: JobQueue, *, max_rows: int = 512,
                 backlog: Backlog | None = None) -> None:
        self._db = db
        self._queue = queue
        self._backlog = backlog
        self._max_rows = max_rows
        self._pending: asyncio.Queue[_Submission | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        # How loaded the API is: rows per commit over windows of about one second. A commit
        # takes whatever arrived while the previous one ran, so under a few requests at a
        # time commits are small, and they grow as requests queue up behind the writer.
        self._window_start = time.monotonic()
        self._window_rows = 0
        self._window_commits = 0
        self._last_rows_per_commit = 0.0

    def start(self) -> None:
        if self._task is None:
            self._closing = False
            # Kept: asyncio.get_running_loop() costs a getpid() system call per submission.
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.create_task(self._run(), name="clarion-group-commit")

    def busy(self, rows_per_commit: float = 16.0) -> bool:
        """Whether requests have been queueing up behind the writer over the last second or
        so (at least ``rows_per_commit`` rows per commit on average): the API is accepting
        about as fast as this process can. The in-process worker uses it to yield, see
        ``clarion.worker.pacing``."""
        if time.monotonic() - self._window_start > 2.0:
            return False  # no commit closed a window for over a second: the API is quiet
        return self._last_rows_per_commit >= rows_per_commit

    def _roll(self, now: float) -> None:
        self._last_rows_per_commit = self._window_rows / self._window_commits
        self._window_start = now
        self._window_rows = self._window_commits = 0

    def _note_commit(self, rows: int, now: float) -> None:
        self._window_rows += rows
        self._window_commits += 1
        if now - self._window_start >= 1.0:
            self._roll(now)

    async def close(self) -> None:
        """Commit everything submitted so far, then stop."""
        if self._task is None:
            return
        self._closing = True
        await self._pending.put(None)  # the writer stops when it reaches this marker
        try:
            await self._task
        finally:
            self._task = None

    async def submit(
        self,
        rows: Sequence[tuple[Table, Sequence[dict[str, Any]]]],
        *,
        batch: Batch | None = None,
    ) -> None:
        """Insert ``rows`` (table, row dicts) and return once they are committed. Raises
        ``Overloaded`` when a batch would pass the backlog cap."""
        if self._task is None or self._closing:
            raise RuntimeError("GroupCommitWriter is not running (start() not called, or closed)")
        if batch is not None and self._backlog is not None:
            self._backlog.check()  # Overloaded at CLARION_MAX_BACKLOG: refused, nothing stored
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        self._pending.put_nowait(_Submission(  # unbounded; the backlog cap bounds the jobs
            rows, batch, fut, time.monotonic() + self._db.write_timeout))
        await fut

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._pending.get()
            if first is None:
                return
            batch = [first]
            size = first.size
            while size < self._max_rows and not self._pending.empty():
                item = self._pending.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
                size += item.size
            now = time.monotonic()
            batch = self._refuse_expired(batch, now)
            if not batch:
                continue
            self._note_commit(size, now)
            try:
                await self._commit_isolating(batch)
            except BaseException as exc:  # cancelled: nobody may wait forever
                _resolve(batch, RuntimeError(f"the group-commit writer stopped: {exc!r}"))
                raise

    def _refuse_expired(self, batch: list[_Submission], now: float) -> list[_Submission]:
        """Fail the submissions whose time ran out while they queued (never tried: nothing of
        them is committed); keep the others."""
        expired = [sub for sub in batch if sub.deadline <= now]
        if not expired:
            return batch
        problem = Unavailability(
            "locked", f"{len(expired)} submission(s) queued past the write timeout")
        _resolve(expired, unavailable_error(problem, write_timeout=self._db.write_timeout))
        return [sub for sub in batch if sub.deadline > now]

    async def _commit_isolating(self, batch: list[_Submission]) -> None:
        try:
            await self._commit(batch)
        except Exception as exc:
            if len(batch) == 1 or is_connection_lost(exc):
                _resolve(batch, exc)
                return
            log.info("group commit of %d submissions failed (%s); splitting to isolate it",
                     len(batch), type(exc).__name__)
            half = len(batch) // 2
            await self._commit_isolating(batch[:half])
            await self._commit_isolating(batch[half:])
        else:
            _resolve(batch, None)

    async def _commit(self, batch: list[_Submission]) -> None:
        # One executemany per (table, column set): executemany compiles the statement from the
        # first row's keys, so rows naming other columns must not share it.
        groups: dict[tuple[Table, tuple[str, ...]], list[dict[str, Any]]] = {}
        jobs: dict[str, list[Any]] = {}
        for sub in batch:
            for table, rows in sub.rows:
                for row in rows:
                    groups.setdefault((table, tuple(sorted(row))), []).append(row)
            if sub.batch is not None:
                jobs.setdefault(sub.batch.task, []).extend(sub.batch.items)
        # The oldest submission's time left bounds the wait (not less than 50 ms: its time may
        # have run out between the check and here, and a free database answers at once).
        left = max(0.05, min(sub.deadline for sub in batch) - time.monotonic())
        async with self._db.write(max_wait=left) as conn:
            for (table, _), rows in sorted(groups.items(), key=lambda g: _dependency_rank(g[0][0])):
                await conn.execute(insert(table), rows)
            if jobs:
                await self._queue.enqueue(conn, [
                    NewJob(kind=kind, payload={"ids": ids}, items=len(ids))
                    for kind, ids in jobs.items()])
        if jobs and self._backlog is not None:
            self._backlog.committed(sum(len(ids) for ids in jobs.values()))


def _dependency_rank(table: Table) -> int:
    """Parents before children, so rows referencing rows of the same batch insert cleanly."""
    try:
        return table.metadata.sorted_tables.index(table)
    except ValueError:
        return 0


def _resolve(batch: list[_Submission], exc: BaseException | None) -> None:
    for sub in batch:
        if sub.future.done():
            continue
        if exc is None:
            sub.future.set_result(None)
        else:
            sub.future.set_exception(exc)
