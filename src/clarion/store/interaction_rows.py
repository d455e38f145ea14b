"""Inserting ``interactions`` rows in bulk, with their ids (the event bus publishes them).

Recording accepted reports writes up to thousands of rows per transaction, so it goes through
``clarion.store.bulk.DriverInsert`` (one driver ``executemany``) instead of
``INSERT … RETURNING`` through SQLAlchemy. The ids are reserved first, in the same transaction:

* **SQLite**: ``max(id) + 1 …``. Safe because a write transaction starts with
  ``BEGIN IMMEDIATE`` (``clarion.store.db``): nobody else can insert until it commits.
* **PostgreSQL**: ``nextval`` of the column's sequence, ``n`` at once. Values are never handed
  out twice, so concurrent workers cannot collide; gaps (a rolled-back batch) are
  harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.store import tables as t
from clarion.store.bulk import DriverInsert

_I = t.interactions

# The order of the values in each row given to ``insert`` (everything but the id).
COLUMNS = ("org_id", "app_id", "send_id", "delivery_id", "person_id", "device_id", "platform",
           "kind", "source", "first", "journey_id", "journey_step_id", "message_id",
           "occurred_at")
_INSERT = DriverInsert(_I, ("id", *COLUMNS))
_PG_NEXT_IDS = text(
    "SELECT nextval(pg_get_serial_sequence('interactions', 'id')) FROM generate_series(1, :n)")


async def insert(conn: AsyncConnection, rows: Sequence[Sequence[Any]]) -> list[int]:
    """Insert ``rows`` (tuples in ``COLUMNS`` order) in ``conn``'s write transaction; return
    their ids, in row order."""
    if not rows:
        return []
    ids = await _reserve_ids(conn, len(rows))
    await _INSERT.run(conn, [(i, *row) for i, row in zip(ids, rows, strict=True)])
    return ids


async def _reserve_ids(conn: AsyncConnection, n: int) -> list[int]:
    if conn.dialect.name == "postgresql":
        return [int(v) for v in (await conn.execute(_PG_NEXT_IDS, {"n": n})).scalars()]
    top = (await conn.execute(select(func.coalesce(func.max(_I.c.id), 0)))).scalar_one()
    return list(range(int(top) + 1, int(top) + 1 + n))
