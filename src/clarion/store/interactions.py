"""Queries of interactions: which delivery a (send, device token) pair names, the delivery
behind a tracked link, inserting recorded interactions in bulk, and loading them back as
events.

Inserting goes through ``clarion.store.bulk.DriverInsert`` (one driver ``executemany``)
instead of ``INSERT … RETURNING`` through SQLAlchemy; the ids are reserved first, in the same
transaction: on SQLite ``max(id) + 1 …``, safe because a write transaction starts with ``BEGIN
IMMEDIATE`` (nobody else can insert until it commits); on PostgreSQL ``nextval`` of the
column's sequence, ``n`` at once (never handed out twice; gaps are harmless).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select, text

from clarion.domain.interactions import InteractionEvent, InteractionKind, Source, Target
from clarion.store import tables as t
from clarion.store.bulk import DriverInsert
from clarion.store.db import Conn

_S = t.sends
_D = t.devices
_DL = t.deliveries
_I = t.interactions
_CHUNK = 500


def _target(r: Any) -> Target:
    return Target(delivery_id=r.id, send_id=r.send_id, org_id=r.org_id, app_id=r.app_id,
                  person_id=r.person_id, device_id=r.device_id, platform=r.platform,
                  journey_id=r.journey_id, journey_step_id=r.journey_step_id,
                  message_id=r.message_id)


async def targets(conn: Conn, send_ids: Sequence[str],
                  token_hashes: Sequence[str]) -> dict[tuple[str, str], Target]:
    """The deliveries of those sends to devices with those token hashes, keyed by (send id,
    token hash): one query walking three indexes, ``sends ⋈ devices (app_id, token_hash) ⋈
    deliveries (send_id, device_id)``. When a token is registered to several people of the
    app, the delivery of the smallest person id is kept (deterministic)."""
    query = (
        select(_DL.c.id, _DL.c.send_id, _S.c.org_id, _DL.c.app_id, _DL.c.person_id,
               _DL.c.device_id, _DL.c.platform, _D.c.token_hash, _S.c.journey_id,
               _S.c.journey_step_id, _S.c.message_id)
        .select_from(
            _S.join(_D, _D.c.app_id == _S.c.app_id)
            .join(_DL, and_(_DL.c.send_id == _S.c.id, _DL.c.device_id == _D.c.id)))
        .where(_S.c.id.in_(send_ids), _D.c.token_hash.in_(token_hashes))
        .order_by(_DL.c.person_id, _DL.c.id)
    )
    out: dict[tuple[str, str], Target] = {}
    for r in (await conn.execute(query)).all():
        out.setdefault((r.send_id, r.token_hash), _target(r))
    return out


@dataclass(frozen=True, slots=True)
class LinkedDelivery:
    target: Target
    link: str | None  # the send's original link


async def linked_delivery(conn: Conn, delivery_id: str) -> LinkedDelivery | None:
    """The delivery a tracked link names, with its send's original link."""
    row = (await conn.execute(
        select(_DL.c.id, _DL.c.send_id, _S.c.org_id, _DL.c.app_id, _DL.c.person_id,
               _DL.c.device_id, _DL.c.platform, _S.c.journey_id, _S.c.journey_step_id,
               _S.c.message_id, _S.c.message)
        .join(_S, _S.c.id == _DL.c.send_id)
        .where(_DL.c.id == delivery_id))).first()
    if row is None:
        return None
    return LinkedDelivery(_target(row), (row.message or {}).get("link"))


# The order of the values in each row given to ``insert`` (everything but the id).
COLUMNS = ("org_id", "app_id", "send_id", "delivery_id", "person_id", "device_id", "platform",
           "kind", "source", "first", "journey_id", "journey_step_id", "message_id",
           "occurred_at")
_INSERT = DriverInsert(_I, ("id", *COLUMNS))
_PG_NEXT_IDS = text(
    "SELECT nextval(pg_get_serial_sequence('interactions', 'id')) FROM generate_series(1, :n)")


async def insert(conn: Conn, rows: Sequence[Sequence[Any]]) -> list[int]:
    """Insert ``rows`` (tuples in ``COLUMNS`` order) in ``conn``'s write transaction; return
    their ids, in row order."""
    if not rows:
        return []
    ids = await _reserve_ids(conn, len(rows))
    await _INSERT.run(conn, [(i, *row) for i, row in zip(ids, rows, strict=True)])
    return ids


async def _reserve_ids(conn: Conn, n: int) -> list[int]:
    if conn.dialect.name == "postgresql":
        return [int(v) for v in (await conn.execute(_PG_NEXT_IDS, {"n": n})).scalars()]
    top = (await conn.execute(select(func.coalesce(func.max(_I.c.id), 0)))).scalar_one()
    return list(range(int(top) + 1, int(top) + 1 + n))


async def by_ids(conn: Conn, ids: Sequence[int]) -> list[InteractionEvent]:
    """The interactions ``ids``, in id order (missing ids are skipped)."""
    unique = sorted(set(ids))
    out: list[InteractionEvent] = []
    for i in range(0, len(unique), _CHUNK):
        rows = (await conn.execute(
            select(_I).where(_I.c.id.in_(unique[i:i + _CHUNK])).order_by(_I.c.id))).all()
        out.extend(InteractionEvent(
            delivery_id=r.delivery_id, send_id=r.send_id, org_id=r.org_id, app_id=r.app_id,
            person_id=r.person_id, device_id=r.device_id, platform=r.platform,
            journey_id=r.journey_id, journey_step_id=r.journey_step_id,
            message_id=r.message_id, id=r.id, kind=InteractionKind(r.kind),
            source=Source(r.source), first=r.first, occurred_at=r.occurred_at) for r in rows)
    return out
