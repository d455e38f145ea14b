"""Queries of org settings: one JSON object of string values per org (placeholders with
source ``org`` read them)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from clarion.store import tables as t
from clarion.store.db import Conn

_S = t.org_settings


async def get(conn: Conn, org_id: str) -> dict[str, str]:
    """The org's settings ({} when none were ever set)."""
    value = await conn.scalar(select(_S.c.settings).where(_S.c.org_id == org_id))
    return {} if value is None else {str(k): str(v) for k, v in dict(value).items()}


async def put(conn: Conn, org_id: str, settings: Mapping[str, str], now: datetime) -> None:
    """Replace the org's settings."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(_S).values(org_id=org_id, settings=dict(settings), updated_at=now)
    await conn.execute(stmt.on_conflict_do_update(
        index_elements=["org_id"],
        set_={"settings": stmt.excluded.settings, "updated_at": stmt.excluded.updated_at}))
