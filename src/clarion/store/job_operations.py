"""What operators do with the job queue (``clarion jobs …``): list jobs, count them per state,
retry or discard dead ones. Mixed into ``JobQueue`` (``clarion.store.jobs``), whose
connection, clock and wake-ups these use."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.clock import Clock
from clarion.errors import InvalidInput
from clarion.store.db import Database
from clarion.store.tables import jobs

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
DEAD = "dead"
STATES = (QUEUED, RUNNING, DONE, DEAD)
CHUNK = 1000  # ids per IN (...) list: far below both databases' bound-parameter limits


@dataclass(frozen=True, slots=True)
class JobInfo:
    id: int
    kind: str
    state: str
    attempts: int
    max_attempts: int
    run_at_ms: int  # when it is due; for a running job, when its lease expires
    last_error: str | None
    created_at_ms: int
    payload: dict[str, Any]


def chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), CHUNK):
        yield unique[start : start + CHUNK]


class JobOperations:
    _db: Database
    _clock: Clock

    async def _announce(self, conn: AsyncConnection, kinds: Collection[str]) -> None:
        raise NotImplementedError

    async def list_jobs(
        self, *, state: str | None = None, kind: str | None = None, limit: int = 100
    ) -> list[JobInfo]:
        """Jobs, newest first, optionally of one state and/or kind."""
        if state is not None and state not in STATES:
            raise InvalidInput(f"unknown job state {state!r}",
                               fix=f"use one of: {', '.join(STATES)}", field="state")
        if not 1 <= limit <= 10_000:
            raise InvalidInput(f"limit must be between 1 and 10000, got {limit}",
                               fix="pass a smaller --limit", field="limit")
        query = select(jobs).order_by(jobs.c.id.desc()).limit(limit)
        if state is not None:
            query = query.where(jobs.c.state == state)
        if kind is not None:
            query = query.where(jobs.c.kind == kind)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [
            JobInfo(id=r.id, kind=r.kind, state=r.state, attempts=r.attempts,
                    max_attempts=r.max_attempts, run_at_ms=r.run_at, last_error=r.last_error,
                    created_at_ms=r.created_at, payload=r.payload)
            for r in rows
        ]

    async def counts(self) -> dict[str, int]:
        """Number of jobs per state (every state present, zero when empty)."""
        query = select(jobs.c.state, func.count()).group_by(jobs.c.state)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        out = dict.fromkeys(STATES, 0)
        out.update({state: int(n) for state, n in rows})
        return out

    async def retry_dead(self, *, job_ids: Sequence[int] | None = None) -> int:
        """Move dead jobs (these ids, or all when None) back to queued, attempts reset."""
        now = self._clock.epoch_ms()
        values = {"state": QUEUED, "attempts": 0, "run_at": now, "lease_until": None,
                  "locked_by": None, "updated_at": now}
        dead = jobs.c.state == DEAD
        count = 0
        async with self._db.write() as conn:
            if job_ids is None:
                result = await conn.execute(update(jobs).where(dead).values(**values))
                count = result.rowcount
            else:
                for chunk in chunks(job_ids):
                    stmt = update(jobs).where(dead, jobs.c.id.in_(chunk)).values(**values)
                    count += (await conn.execute(stmt)).rowcount
            if count:
                await self._announce(conn, ["*"])
        return count

    async def discard_dead(self, *, job_ids: Sequence[int] | None = None) -> int:
        """Delete dead jobs (these ids, or all when None): an operator decided they must not
        run. Only dead jobs: queued, running and done jobs are never touched."""
        dead = jobs.c.state == DEAD
        count = 0
        async with self._db.write() as conn:
            if job_ids is None:
                count = (await conn.execute(delete(jobs).where(dead))).rowcount
            else:
                for chunk in chunks(job_ids):
                    count += (await conn.execute(
                        delete(jobs).where(dead, jobs.c.id.in_(chunk)))).rowcount
        return count
