"""Readiness (``GET /readyz``): can this process do its work right now, and what is not right.

Liveness (``GET /healthz``) only says the process answers; a load balancer or an orchestrator
should route traffic by readiness. Ready means: the database can be read, and written within
a short bound (so a database locked by another writer, read-only, or unreachable is *not
ready*), and the backlog of accepted requests is below ``CLARION_MAX_BACKLOG`` (at the cap the
accepting endpoints refuse with 503). The rest of the queue is reported as it is (waiting
jobs, how long the oldest due job has been due, dead jobs) without making the process
unready: a backlog is processed, and dead jobs need an operator, not another process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clarion.clock import Clock
from clarion.errors import DatabaseUnavailable
from clarion.store.backlog import Backlog, queue_health
from clarion.store.db import Database

# How long the write probe may wait for the database: short, since a probe that hangs is an
# answer too late; the write timeout when that is shorter.
PROBE_SECONDS = 2.0


@dataclass(slots=True)
class Readiness:
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    not_ready: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.not_ready

    def as_dict(self) -> dict[str, Any]:
        return {"status": "ready" if self.ready else "not_ready", "checks": self.checks,
                "not_ready": self.not_ready}


async def check(*, db: Database, clock: Clock, backlog: Backlog) -> Readiness:
    out = Readiness()
    database: dict[str, Any] = {"dialect": db.dialect, "read": "ok", "write": "ok"}
    out.checks["database"] = database
    try:
        await db.check_read()
    except DatabaseUnavailable as exc:
        database["read"] = database["write"] = exc.reason
        out.not_ready.append(f"database: {exc.message}")
        return out
    try:
        await db.check_write(max_wait=min(PROBE_SECONDS, db.write_timeout))
    except DatabaseUnavailable as exc:
        database["write"] = exc.reason
        out.not_ready.append(f"database: cannot write: {exc.message}")
    try:
        health = await queue_health(db, now_ms=clock.epoch_ms())
        items = await backlog.refresh()
    except DatabaseUnavailable as exc:
        out.checks["queue"] = {"status": exc.reason}
        out.not_ready.append(f"queue: {exc.message}")
        return out
    full = bool(backlog.limit) and items >= backlog.limit
    out.checks["queue"] = {"status": "full" if full else "ok", "backlog_items": items,
                           "max_backlog": backlog.limit, "waiting_jobs": health.waiting_jobs,
                           "oldest_due_seconds": health.oldest_due_seconds,
                           "dead_jobs": health.dead_jobs}
    if full:
        out.not_ready.append(
            f"queue: the backlog of accepted requests ({items}) is at CLARION_MAX_BACKLOG "
            f"({backlog.limit}): registrations and interaction reports are refused with 503 "
            "until workers catch up")
    return out
