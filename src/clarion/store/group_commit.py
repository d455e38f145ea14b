"""Group commit: many small writes from concurrent requests, one transaction.

The hot accept paths (device registration, later interaction events) must not pay one
transaction per request (~1 ms through SQLAlchemy async on SQLite, and the single writer would
serialise them). Requests hand their rows to ``GroupCommitWriter.submit`` and wait; one task
drains whatever is waiting (up to ``max_rows`` rows), inserts it with one ``executemany`` per
table inside one transaction and wakes every waiter once the commit is durable. A request is
answered only after its rows are committed, so an accepted request is never lost.

A submission may name a *batch job*: instead of one job per request, each commit enqueues one
job per kind carrying the ids of every submission in it (``{"ids": [...]}``), so the worker
also processes them in batches.

If a batch fails (a constraint, a bad row), it is retried one submission at a time so one bad
request cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, insert

from clarion.store.db import Database
from clarion.store.jobs import JobQueue, NewJob

log = logging.getLogger(__name__)


@dataclass
class _Submission:
    rows: Sequence[tuple[Table, Sequence[dict[str, Any]]]]
    batch_job: tuple[str, Sequence[str]] | None
    future: asyncio.Future[None] = field(repr=False)

    @property
    def size(self) -> int:
        return sum(len(r) for _, r in self.rows) or 1


class GroupCommitWriter:
    def __init__(self, db: Database, queue: JobQueue, *, max_rows: int = 512) -> None:
        self._db = db
        self._queue = queue
        self._max_rows = max_rows
        self._pending: asyncio.Queue[_Submission] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="clarion-group-commit")

    async def close(self) -> None:
        """Commit what is waiting, then stop."""
        if self._task is None:
            return
        while not self._pending.empty():
            await asyncio.sleep(0.005)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def submit(
        self,
        rows: Sequence[tuple[Table, Sequence[dict[str, Any]]]],
        *,
        batch_job: tuple[str, Sequence[str]] | None = None,
    ) -> None:
        """Insert ``rows`` (table, row dicts) and return once they are committed."""
        if self._task is None:
            raise RuntimeError("GroupCommitWriter.start() was not called")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._pending.put(_Submission(rows, batch_job, fut))
        await fut

    async def _run(self) -> None:
        while True:
            first = await self._pending.get()
            batch = [first]
            size = first.size
            while size < self._max_rows and not self._pending.empty():
                item = self._pending.get_nowait()
                batch.append(item)
                size += item.size
            try:
                await self._commit(batch)
            except Exception as exc:  # the whole batch failed: isolate the culprit
                if len(batch) == 1:
                    _resolve(batch, exc)
                    continue
                log.warning("group commit of %d submissions failed (%s); retrying one by one",
                            len(batch), exc)
                for sub in batch:
                    try:
                        await self._commit([sub])
                    except Exception as one_exc:
                        _resolve([sub], one_exc)
                    else:
                        _resolve([sub], None)
            else:
                _resolve(batch, None)

    async def _commit(self, batch: list[_Submission]) -> None:
        by_table: dict[Table, list[dict[str, Any]]] = {}
        jobs: dict[str, list[str]] = {}
        for sub in batch:
            for table, rows in sub.rows:
                by_table.setdefault(table, []).extend(rows)
            if sub.batch_job is not None:
                kind, ids = sub.batch_job
                jobs.setdefault(kind, []).extend(ids)
        async with self._db.write() as conn:
            for table, rows in by_table.items():
                if rows:
                    await conn.execute(insert(table), rows)
            if jobs:
                await self._queue.enqueue(
                    conn, [NewJob(kind=kind, payload={"ids": ids}) for kind, ids in jobs.items()]
                )


def _resolve(batch: list[_Submission], exc: BaseException | None) -> None:
    for sub in batch:
        if sub.future.done():
            continue
        if exc is None:
            sub.future.set_result(None)
        else:
            sub.future.set_exception(exc)
