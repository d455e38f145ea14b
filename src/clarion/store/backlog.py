"""How much work waits in the job queue, read cheaply from the database that every process
shares: for ``GET /readyz`` and for the backlog cap of the accepting endpoints.

Kept apart from ``clarion.store.jobs`` (the queue's life cycle): these are reads over the
partial index ``ix_jobs_due`` (``state IN ('queued', 'running')``) that only report.

**The backlog cap** (``CLARION_MAX_BACKLOG``). Accepted registrations and interaction reports
wait in group-commit jobs, each job counting the requests it carries in ``jobs.items``. The
backlog is the sum of ``items`` over the waiting jobs: one read of the due index (it holds
``items``), shared by every process because it is in the database. The hot paths must not pay
a query per request, so ``Backlog.check()`` only compares numbers: the sum is refreshed in the
background at most once per ``refresh_seconds`` (1 s) per process, when something asks, and
what this process committed since the refresh began is added locally. Other processes'
commits are therefore seen up to a second late: with N processes accepting at R requests/s
each, the backlog may pass the cap by up to about N × R items before everyone refuses. A
refusal happens before anything is stored, so nothing accepted is ever dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select, text

from clarion.errors import DatabaseUnavailable, Overloaded
from clarion.store.db import Database
from clarion.store.tables import JOBS_DUE_SQL, jobs

log = logging.getLogger(__name__)

_WAITING: ColumnElement[bool] = text(JOBS_DUE_SQL)  # type: ignore[assignment]
_SUM: Select[Any] = select(func.coalesce(func.sum(jobs.c["items"]), 0)).where(_WAITING)
# SQLite's planner prefers ix_jobs_state_run_at there (two range scans and a table read per
# row); the partial due index holds every waiting job and its items: about 8x faster with 100k
# waiting jobs. SQLAlchemy renders no index hints for SQLite, hence the text.
_SUM_SQLITE = text(  # JOBS_DUE_SQL is a constant: the index's predicate, repeated verbatim
    f"SELECT coalesce(sum(items), 0) FROM jobs INDEXED BY ix_jobs_due WHERE {JOBS_DUE_SQL}")  # noqa: S608


async def backlog_items(db: Database) -> int:
    """Accepted client requests waiting to be processed, in every process."""
    async with db.read() as conn:
        return int((await conn.execute(_SUM_SQLITE if db.is_sqlite else _SUM)).scalar_one())


class Backlog:
    """The backlog as this process last saw it, and whether it reached the cap."""

    def __init__(self, db: Database, *, limit: int, refresh_seconds: float = 1.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self.limit = limit  # 0: no cap
        self._every = refresh_seconds
        self._monotonic = monotonic
        self.items = 0  # the database's sum at the last refresh
        self.unconfirmed = 0  # committed here since that refresh began
        self._at = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._reading = asyncio.Lock()  # one read at a time: a late, older read never wins
        self._failing = False

    def check(self) -> None:
        """Raise ``Overloaded`` when accepting more would pass the cap. A clock read and a
        comparison (this runs once per accepted request); starts a refresh in the background
        when the last one is older than ``refresh_seconds``."""
        if not self.limit:
            return
        if self._task is None and self._monotonic() - self._at >= self._every:
            self._task = asyncio.create_task(self._refresh_quietly(), name="clarion-backlog")
        if self.items + self.unconfirmed >= self.limit:
            raise Overloaded(
                "too many accepted requests are waiting to be processed; nothing was stored",
                fix="Retry after the number of seconds in Retry-After. Operators: the backlog "
                    "is at CLARION_MAX_BACKLOG (GET /readyz): add workers, or raise it.",
                retry_after_seconds=10)

    def committed(self, items: int) -> None:
        """This process committed ``items`` more (until the next refresh counts them)."""
        self.unconfirmed += items

    async def refresh(self) -> int:
        """Read the sum now (tests, readiness); return it. Waits for a read in flight, so
        that a read begun earlier can never overwrite a later one."""
        async with self._reading:
            self._at = self._monotonic()
            before = self.unconfirmed
            total = await backlog_items(self._db)
            # Commits during the query may be in the sum and in ``unconfirmed`` both: counted
            # twice until the next refresh, which errs on the safe side.
            self.items, self.unconfirmed = total, self.unconfirmed - before
            return total

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
            self._failing = False
        except DatabaseUnavailable as exc:  # the requests themselves will say so
            if not self._failing:
                log.warning("cannot read the backlog: %s", exc.message)
            self._failing = True
        finally:
            self._task = None

    async def close(self) -> None:
        task = self._task
        if task is not None:
            await task


@dataclass(frozen=True, slots=True)
class QueueHealth:
    waiting_jobs: int  # queued or running
    oldest_due_seconds: float | None  # how long the job due the longest has been due
    dead_jobs: int


async def queue_health(db: Database, *, now_ms: int) -> QueueHealth:
    """Three indexed reads: the waiting jobs (``ix_jobs_due``), the earliest due one (its first
    entry) and the dead ones (``ix_jobs_state_run_at``). Raises ``DatabaseUnavailable``."""
    async with db.read() as conn:
        waiting = (await conn.execute(
            select(func.count()).select_from(jobs).where(_WAITING))).scalar_one()
        earliest = (await conn.execute(
            select(func.min(jobs.c.run_at)).where(_WAITING, jobs.c.run_at <= now_ms)
        )).scalar_one()
        dead = (await conn.execute(
            select(func.count()).select_from(jobs).where(jobs.c.state == "dead"))).scalar_one()
    oldest = None if earliest is None else max(0.0, (now_ms - int(earliest)) / 1000)
    return QueueHealth(int(waiting), oldest, int(dead))
