"""Liveness (``/healthz``: the process answers) and readiness (``/readyz``: it can do its work
now; ``clarion.services.readiness``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from clarion.api.deps import ContainerDep
from clarion.api.responses import JSON
from clarion.services import readiness

router = APIRouter(tags=["health"])

_READY_EXAMPLE = {
    "status": "ready",
    "checks": {"database": {"dialect": "sqlite", "read": "ok", "write": "ok"},
               "queue": {"status": "ok", "backlog_items": 120, "max_backlog": 1000000,
                         "waiting_jobs": 3, "oldest_due_seconds": 0.4, "dead_jobs": 0}},
    "not_ready": []}


@router.get("/healthz")
async def healthz(container: ContainerDep) -> dict[str, str]:
    """Liveness: 200 while the process answers. It does not touch the database, so that a
    database outage does not get a healthy process restarted; route traffic by /readyz."""
    return {"status": "ok", "database": container.db.dialect}


@router.get("/readyz", responses={
    200: {"description": "Ready: the database can be read and written now.",
          "content": {"application/json": {"example": _READY_EXAMPLE}}},
    503: {"description": "Not ready: `not_ready` says what (the database locked, read-only "
                         "or unreachable; the backlog at its cap), `checks` gives the "
                         "details."}})
async def readyz(container: ContainerDep) -> Any:
    """Readiness: the database (read; write within 2 s) and the job queue (the backlog of
    accepted requests against CLARION_MAX_BACKLOG, waiting jobs, how long the oldest due job
    has been due, dead jobs)."""
    result = await readiness.check(db=container.db, clock=container.clock,
                                   backlog=container.backlog)
    return JSON(result.as_dict(), status_code=200 if result.ready else 503)
