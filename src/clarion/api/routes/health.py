"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from clarion.api.deps import ContainerDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(container: ContainerDep) -> dict[str, str]:
    async with container.db.read() as conn:
        await conn.execute(text("SELECT 1"))
    return {"status": "ok", "database": container.db.dialect}
