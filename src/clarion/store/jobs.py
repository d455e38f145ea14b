"""The durable job queue: one table, the same SQLAlchemy Core statements on both databases.

Life of a job::

    enqueue ──> queued ──claim──> running ──complete──> (deleted) or done ──purge──> (deleted)
                  ^                  │
                  └──fail (retry)────┤ lease expired: claimable again by any worker (takeover)
                                     └──fail (permanent / out of attempts)──> dead ──retry──> queued

- **Visibility timeout.** ``run_at`` is the moment a job becomes claimable. Claiming sets it
  to the lease expiry (the SQS "visibility timeout" idea), so a single indexed range scan,
  ``state IN ('queued','running') AND run_at <= now ORDER BY run_at LIMIT n`` over the partial
  index ``ix_jobs_due``, finds both due jobs and jobs whose worker died. ``lease_until``
  mirrors it for display. For ``done`` and ``dead`` jobs ``run_at`` is when they got there,
  so purging walks ``ix_jobs_state_run_at``.
- **PostgreSQL**: claims lock rows with ``FOR UPDATE SKIP LOCKED``, so any number of workers on
  any number of machines take disjoint batches without waiting on each other. Enqueues send
  ``pg_notify('clarion_jobs', kind)`` inside the enqueuing transaction (PostgreSQL delivers it
  only on commit) and every queue keeps one ``LISTEN`` connection that wakes its waiters.
- **SQLite**: one writer. Claims go through ``Database.write()`` (``BEGIN IMMEDIATE``), so no
  row locks are needed; waiters are woken in-process once an enqueue commits.
- **Idempotency**: a job with a ``unique_key`` is inserted with ``ON CONFLICT DO NOTHING`` and
  kept as ``done`` after completion (for ``done_retention_seconds``) so a repeat enqueue stays
  a no-op; jobs without a key are deleted as soon as they complete.
- Delivery is at least once: a worker that loses its lease may run a job a second time, so
  handlers must be idempotent.

Wake-ups (in-process and PostgreSQL LISTEN) live in ``clarion.store.job_wakeup``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Insert,
    Update,
    bindparam,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.clock import Clock
from clarion.domain.backoff import backoff_seconds
from clarion.errors import InvalidInput
from clarion.store.db import Database, after_commit
from clarion.store.job_wakeup import NOTIFY_CHANNEL, Wakeup
from clarion.store.tables import JOBS_DUE_SQL, jobs

log = logging.getLogger(__name__)

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
DEAD = "dead"
STATES = (QUEUED, RUNNING, DONE, DEAD)

_CHUNK = 1000  # ids per IN (...) list: far below both databases' bound-parameter limits
_PURGE_CHUNK = 5000  # rows per purge transaction, so the SQLite writer is never held long
_MAX_ERROR_CHARS = 8000
_DUE: ColumnElement[bool] = text(JOBS_DUE_SQL)  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class NewJob:
    kind: str
    payload: dict[str, Any]
    unique_key: str | None = None  # enqueue is a no-op if a job with this key exists (any state)
    run_at_ms: int | None = None  # default: now
    max_attempts: int | None = None  # default: the queue's
    items: int = 0  # accepted client requests it carries (counted by the backlog cap)


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int  # including the current one
    max_attempts: int


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


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _CHUNK):
        yield unique[start : start + _CHUNK]


class JobQueue:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        lease_seconds: float,
        max_attempts: int,
        done_retention_seconds: float,
        backoff_base_seconds: float = 1.0,
        backoff_cap_seconds: float = 3600.0,
    ) -> None:
        if lease_seconds <= 0 or max_attempts < 1 or done_retention_seconds < 0:
            raise ValueError("lease_seconds > 0, max_attempts >= 1, done_retention_seconds >= 0")
        self._db = db
        self._clock = clock
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.done_retention_seconds = done_retention_seconds
        self._backoff_base = backoff_base_seconds
        self._backoff_cap = backoff_cap_seconds
        self._is_pg = db.dialect == "postgresql"
        self._wakeup = Wakeup()
        dialect_insert = postgresql.insert if self._is_pg else sqlite.insert
        self._insert_plain: Insert = dialect_insert(jobs)
        self._insert_unique: Insert = (
            dialect_insert(jobs)
            .on_conflict_do_nothing(index_elements=[jobs.c.unique_key])
            .returning(jobs.c.id)
        )
        self._claim_all = self._claim_statement(with_kinds=False)
        self._claim_kinds = self._claim_statement(with_kinds=True)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """PostgreSQL: open the LISTEN connection (retried in the background if it fails)."""
        if self._is_pg:
            await self._wakeup.listen(self._db.url)

    async def close(self) -> None:
        await self._wakeup.close()

    # -- producing -----------------------------------------------------------------------

    async def enqueue(self, conn: AsyncConnection, new_jobs: Sequence[NewJob]) -> int:
        """Insert ``new_jobs`` inside the caller's write transaction; return how many were new.

        Jobs whose ``unique_key`` already exists (in any state) are skipped. Waiters are woken
        only after the caller commits (never if it rolls back).
        """
        if not new_jobs:
            return 0
        now = self._clock.epoch_ms()
        plain: list[dict[str, Any]] = []
        keyed: dict[str, dict[str, Any]] = {}
        for job in new_jobs:
            row = self._row(job, now)
            if job.unique_key is None:
                plain.append(row)
            else:
                keyed.setdefault(job.unique_key, row)
        inserted = 0
        if plain:
            await conn.execute(self._insert_plain, plain)
            inserted += len(plain)
        if keyed:
            result = await conn.execute(self._insert_unique, list(keyed.values()))
            inserted += len(result.all())
        due_kinds = {job.kind for job in new_jobs if job.run_at_ms is None or job.run_at_ms <= now}
        if inserted and due_kinds:
            await self._announce(conn, due_kinds)
        return inserted

    async def enqueue_now(self, new_jobs: Sequence[NewJob]) -> int:
        """``enqueue`` in a write transaction of its own."""
        async with self._db.write() as conn:
            return await self.enqueue(conn, new_jobs)

    def _row(self, job: NewJob, now: int) -> dict[str, Any]:
        if not job.kind or len(job.kind) > 64:
            raise ValueError(f"job kind must be 1-64 characters, got {job.kind!r}")
        if job.unique_key is not None and not 0 < len(job.unique_key) <= 200:
            raise ValueError(f"unique_key must be 1-200 characters, got {job.unique_key!r}")
        max_attempts = job.max_attempts if job.max_attempts is not None else self.max_attempts
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        return {
            "kind": job.kind,
            "payload": job.payload,
            "unique_key": job.unique_key,
            "state": QUEUED,
            "attempts": 0,
            "max_attempts": max_attempts,
            "run_at": job.run_at_ms if job.run_at_ms is not None else now,
            "lease_until": None,
            "locked_by": None,
            "last_error": None,
            "created_at": now,
            "updated_at": now,
            "items": job.items,
        }

    async def _announce(self, conn: AsyncConnection, kinds: Collection[str]) -> None:
        """Wake local waiters after commit; on PostgreSQL also every other process's."""
        after_commit(conn, self._wakeup.wake)
        if self._is_pg:
            # Delivered at commit, dropped on rollback; duplicates within one transaction are
            # folded by the server (PostgreSQL docs, NOTIFY).
            for kind in sorted(kinds):
                await conn.execute(select(func.pg_notify(NOTIFY_CHANNEL, kind)))

    # -- consuming -----------------------------------------------------------------------

    def _claim_statement(self, *, with_kinds: bool) -> Update:
        due = select(jobs.c.id).where(_DUE, jobs.c.run_at <= bindparam("p_now"))
        if with_kinds:
            due = due.where(jobs.c.kind.in_(bindparam("p_kinds", expanding=True)))
        due = due.order_by(jobs.c.run_at).limit(bindparam("p_limit"))
        if self._is_pg:
            due = due.with_for_update(skip_locked=True)
        return (
            update(jobs)
            .where(jobs.c.id.in_(due.scalar_subquery()))
            .values(
                state=RUNNING,
                attempts=jobs.c.attempts + 1,
                run_at=bindparam("p_lease"),
                lease_until=bindparam("p_lease"),
                locked_by=bindparam("p_worker"),
                updated_at=bindparam("p_now"),
            )
            .returning(jobs.c.id, jobs.c.kind, jobs.c.payload, jobs.c.attempts,
                       jobs.c.max_attempts)
        )

    async def claim(
        self, *, worker_id: str, limit: int, kinds: Collection[str] | None = None
    ) -> list[Job]:
        """Lease up to ``limit`` due jobs (queued and due, or running with an expired lease)."""
        if limit < 1 or (kinds is not None and not kinds):
            return []
        now = self._clock.epoch_ms()
        params: dict[str, Any] = {
            "p_now": now,
            "p_limit": limit,
            "p_lease": now + self._lease_ms,
            "p_worker": worker_id[:64],
        }
        stmt = self._claim_all
        if kinds is not None:
            stmt = self._claim_kinds
            params["p_kinds"] = sorted(kinds)
        async with self._db.write() as conn:
            rows = (await conn.execute(stmt, params)).all()
        claimed = [
            Job(id=r.id, kind=r.kind, payload=r.payload, attempts=r.attempts,
                max_attempts=r.max_attempts)
            for r in rows
        ]
        claimed.sort(key=lambda job: job.id)
        return claimed

    @property
    def _lease_ms(self) -> int:
        return int(self.lease_seconds * 1000)

    async def complete(self, job_ids: Sequence[int]) -> None:
        """Finish running jobs: delete them, or keep keyed ones as ``done`` until purged."""
        if not job_ids:
            return
        async with self._db.write() as conn:
            await self.complete_in(conn, job_ids)

    async def complete_in(self, conn: AsyncConnection, job_ids: Sequence[int]) -> int:
        """``complete`` inside the caller's write transaction; return how many of ``job_ids``
        were still running (and are now finished).

        A handler that completes its jobs in the transaction of its own writes does them
        exactly once: if the count is short, another worker finished them first (its lease
        had run out), and the handler should roll back."""
        now = self._clock.epoch_ms()
        finished = 0
        for chunk in _chunks(job_ids):
            mine = (jobs.c.id.in_(chunk), jobs.c.state == RUNNING)
            finished += (await conn.execute(
                delete(jobs).where(*mine, jobs.c.unique_key.is_(None)))).rowcount
            finished += (await conn.execute(
                update(jobs)
                .where(*mine, jobs.c.unique_key.is_not(None))
                .values(state=DONE, run_at=now, lease_until=None, locked_by=None,
                        updated_at=now)
            )).rowcount
        return finished

    async def fail(
        self,
        job: Job,
        error: str,
        *,
        retry_in_seconds: float | None = None,
        permanent: bool = False,
    ) -> str:
        """Record a failure; return the new state: ``queued`` (retried later) or ``dead``."""
        states = await self.fail_many(
            [job], error, retry_in_seconds=retry_in_seconds, permanent=permanent
        )
        return states[job.id]

    async def fail_many(
        self,
        failed: Sequence[Job],
        error: str,
        *,
        retry_in_seconds: float | None = None,
        permanent: bool = False,
    ) -> dict[int, str]:
        """``fail`` for a batch in one transaction; returns the new state per job id.

        A job goes back to ``queued`` with ``run_at = now + retry_in_seconds`` (or a jittered
        exponential backoff on its attempt number) unless ``permanent`` or out of attempts,
        when it goes to ``dead``. A job that is no longer running under the same attempt (its
        lease expired and another worker took it) is left alone.
        """
        if not failed:
            return {}
        now = self._clock.epoch_ms()
        message = error[-_MAX_ERROR_CHARS:]
        states: dict[int, str] = {}
        params: list[dict[str, Any]] = []
        for job in failed:
            if permanent or job.attempts >= job.max_attempts:
                state, run_at = DEAD, now
            else:
                delay = retry_in_seconds
                if delay is None:
                    delay = backoff_seconds(
                        max(job.attempts, 1), base=self._backoff_base, cap=self._backoff_cap
                    )
                state, run_at = QUEUED, now + int(max(delay, 0.0) * 1000)
            states[job.id] = state
            params.append({"p_id": job.id, "p_attempts": job.attempts, "p_state": state,
                           "p_run_at": run_at, "p_error": message, "p_now": now})
        stmt = (
            update(jobs)
            .where(jobs.c.id == bindparam("p_id"), jobs.c.state == RUNNING,
                   jobs.c.attempts == bindparam("p_attempts"))
            .values(state=bindparam("p_state"), run_at=bindparam("p_run_at"),
                    lease_until=None, locked_by=None, last_error=bindparam("p_error"),
                    updated_at=bindparam("p_now"))
        )
        async with self._db.write() as conn:
            await conn.execute(stmt, params)
        return states

    async def extend_lease(self, job_ids: Sequence[int]) -> None:
        """Push the lease of still-running jobs to ``now + lease_seconds``."""
        if not job_ids:
            return
        now = self._clock.epoch_ms()
        until = now + self._lease_ms
        async with self._db.write() as conn:
            for chunk in _chunks(job_ids):
                await conn.execute(
                    update(jobs)
                    .where(jobs.c.id.in_(chunk), jobs.c.state == RUNNING)
                    .values(run_at=until, lease_until=until, updated_at=now)
                )

    async def wait(self, timeout: float) -> None:  # noqa: ASYNC109 (the brief's interface)
        """Sleep up to ``timeout`` seconds; return early when new jobs may be due."""
        await self._wakeup.wait(timeout)

    # -- operating -----------------------------------------------------------------------

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
                for chunk in _chunks(job_ids):
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
                for chunk in _chunks(job_ids):
                    count += (await conn.execute(
                        delete(jobs).where(dead, jobs.c.id.in_(chunk)))).rowcount
        return count

    async def purge_done(self) -> int:
        """Delete ``done`` jobs older than the retention; return how many were deleted."""
        cutoff = self._clock.epoch_ms() - int(self.done_retention_seconds * 1000)
        old = (
            select(jobs.c.id)
            .where(jobs.c.state == DONE, jobs.c.run_at <= cutoff)  # done: run_at = finished
            .limit(_PURGE_CHUNK)
            .scalar_subquery()
        )
        total = 0
        while True:
            async with self._db.write() as conn:
                deleted = (await conn.execute(delete(jobs).where(jobs.c.id.in_(old)))).rowcount
            total += deleted
            if deleted < _PURGE_CHUNK:
                return total
