"""Queries of trigger declarations and their firings. Every query filters on ``org_id``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select

from clarion.domain.triggers import TriggerEvent, TriggerRead
from clarion.store import tables as t
from clarion.store.db import Conn, duplicates_raised

_T = t.triggers.c
_F = t.trigger_firings.c
_CHUNK = 1000


def _trigger(row: Mapping[Any, Any]) -> TriggerRead:
    return TriggerRead(id=row["id"], name=row["name"], attributes=dict(row["attributes"]),
                       created_at=row["created_at"])


def _event(row: Mapping[Any, Any]) -> TriggerEvent:
    return TriggerEvent(id=row["id"], org_id=row["org_id"], trigger=row["trigger"],
                        person_id=row["person_id"], data=dict(row["data"]),
                        fired_at=row["fired_at"])


async def insert_trigger(conn: Conn, row: Mapping[str, Any]) -> TriggerRead:
    """Insert a declaration (``Duplicate`` if the org has one of that name)."""
    async with duplicates_raised():
        await conn.execute(insert(t.triggers).values(**row))
    return _trigger(row)


async def by_name(conn: Conn, org_id: str, name: str) -> TriggerRead | None:
    row = (await conn.execute(select(t.triggers).where(
        _T.org_id == org_id, _T.name == name))).mappings().first()
    return None if row is None else _trigger(row)


async def page(conn: Conn, org_id: str, after: str | None, limit: int) -> list[TriggerRead]:
    query = select(t.triggers).where(_T.org_id == org_id)
    if after is not None:
        query = query.where(_T.name > after)
    rows = (await conn.execute(query.order_by(_T.name).limit(limit))).mappings().all()
    return [_trigger(r) for r in rows]


async def delete_trigger(conn: Conn, org_id: str, trigger_id: str) -> None:
    # Firings first: SQLite enforces no foreign keys unless asked, so no cascade is relied on.
    await conn.execute(delete(t.trigger_firings).where(_F.org_id == org_id,
                                                       _F.trigger_id == trigger_id))
    await conn.execute(delete(t.triggers).where(_T.org_id == org_id, _T.id == trigger_id))


async def insert_firing(conn: Conn, row: Mapping[str, Any]) -> TriggerEvent:
    """Store a fire (``Duplicate`` if its idempotency key was used for this trigger)."""
    async with duplicates_raised():
        await conn.execute(insert(t.trigger_firings).values(**row))
    return _event(row)


async def firing_by_key(conn: Conn, trigger_id: str, key: str) -> TriggerEvent | None:
    row = (await conn.execute(select(t.trigger_firings).where(
        _F.trigger_id == trigger_id, _F.idempotency_key == key))).mappings().first()
    return None if row is None else _event(row)


async def firings(conn: Conn, ids: Sequence[str]) -> list[TriggerEvent]:
    """The firings ``ids`` in id order (missing ones skipped: their trigger was deleted)."""
    unique = sorted(set(ids))
    out: list[TriggerEvent] = []
    for start in range(0, len(unique), _CHUNK):
        rows = (await conn.execute(select(t.trigger_firings).where(
            _F.id.in_(unique[start:start + _CHUNK])).order_by(_F.id))).mappings().all()
        out.extend(_event(r) for r in rows)
    return out
