"""Liveness."""

from __future__ import annotations

from fastapi import APIRouter

from clarion.api.deps import HealthDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(health: HealthDep) -> dict[str, str]:
    await health.check_database()
    return {"status": "ok", "database": health.database}
