"""How much work waits in the job queue, read cheaply from the database that every process
shares: for ``GET /readyz`` and for the backlog cap of the accepting endpoints.

Kept apart from ``clarion.store.jobs`` (the queue's life cycle): these are reads over the
partial index ``ix_jobs_due`` (``state IN ('queued', 'running')``) that only report.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select, text

from clarion.store.db import Database
from clarion.store.tables import JOBS_DUE_SQL, jobs

_WAITING: ColumnElement[bool] = text(JOBS_DUE_SQL)  # type: ignore[assignment]


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
