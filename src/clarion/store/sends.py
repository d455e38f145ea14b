"""Queries of sends and their deliveries: creating a send, reading it with its outcomes, the
fan-out's pages, and the delivery path (loading pending deliveries, writing outcomes).

The delivery statements are the hottest writes of the product (one row per notification), so
they go through ``clarion.store.bulk.DriverMany``; SQLite and PostgreSQL differ in how a batch
of ids is matched (an ``IN`` list / one array parameter) and in how an outcome batch proves
that no other worker finished a delivery meanwhile (SQLite's single writer: the UPDATE's row
count; PostgreSQL: row locks).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    any_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from clarion.domain.sends import DeliveryRead
from clarion.store import tables as t
from clarion.store.bulk import DriverMany
from clarion.store.db import Conn, duplicates_raised
from clarion.store.tables import AUDIENCE_CHUNK

_S = t.sends
_A = t.send_audience
_DL = t.deliveries
_D = t.devices
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class SendRow:
    id: str
    org_id: str
    app_id: str
    people_count: int  # the audience's size (its rows: send_audience)
    message: dict[str, Any]
    state: str  # queued | fanning_out | fanned_out
    fanned_out_people: int
    journey_id: str | None
    journey_step_id: str | None
    message_id: str | None
    created_at: datetime
    expires_at: datetime
    category: str = "commercial"  # commercial | transactional (compliance rules)
    segment_id: str | None = None  # a send to a segment (its audience grows as fan-out reads)
    rules: dict[str, Any] | None = None  # its own compliance rules (SendRules.stored())

    def keys(self) -> dict[str, Any]:
        """The report keys of the send (journey keys are null for API sends)."""
        return {"org_id": self.org_id, "app_id": self.app_id, "send_id": self.id,
                "journey_id": self.journey_id, "journey_step_id": self.journey_step_id,
                "message_id": self.message_id}


@dataclass(frozen=True, slots=True)
class ActiveDevice:
    id: str
    person_id: str
    platform: str


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    """A delivery still to send, with its device (``token`` None: the device is gone)."""

    id: str
    send_id: str
    app_id: str
    platform: str
    attempts: int
    device_id: str
    person_id: str
    sole: bool  # the only device of its person in the send
    token: str | None
    web_keys: dict[str, str] | None
    device_state: str | None


@dataclass(frozen=True, slots=True)
class SendToDeliver:
    id: str
    org_id: str
    journey_id: str | None
    journey_step_id: str | None
    message_id: str | None
    expires_at: datetime
    message: dict[str, Any]


# ------------------------------------------------------------------------------ sends


async def id_by_key(conn: Conn, org_id: str, key: str, since: datetime) -> str | None:
    """The send created with this idempotency key since ``since``."""
    row = (await conn.execute(select(_S.c.id).where(
        _S.c.org_id == org_id, _S.c.idempotency_key == key,
        _S.c.created_at >= since))).first()
    return None if row is None else str(row.id)


async def release_key(conn: Conn, org_id: str, key: str, before: datetime) -> None:
    """Free an idempotency key used by sends older than ``before`` (the window is over)."""
    await conn.execute(update(_S).where(
        _S.c.org_id == org_id, _S.c.idempotency_key == key,
        _S.c.created_at < before).values(idempotency_key=None))


_INSERT_AUDIENCE = DriverMany(
    lambda _d: insert(_A), ("send_id", "chunk", "people"),
    column_keys=("send_id", "chunk", "people"))


async def insert_send(conn: Conn, row: Mapping[str, Any], audience: Sequence[str]) -> None:
    """Insert a send and its audience, in order, in chunks of ``AUDIENCE_CHUNK`` ids
    (``Duplicate`` when its idempotency key was taken meanwhile)."""
    async with duplicates_raised():
        await conn.execute(insert(_S).values(**row, people_count=len(audience)))
    await _INSERT_AUDIENCE.run(conn, [
        (row["id"], n, list(audience[i:i + AUDIENCE_CHUNK]))
        for n, i in enumerate(range(0, len(audience), AUDIENCE_CHUNK))])


async def append_audience(conn: Conn, send_id: str, chunk: int, people: Sequence[str]) -> None:
    """Record the next chunk of a segment send's audience, as fan-out read it (``Duplicate``
    when another run of the same page recorded it first)."""
    async with duplicates_raised():
        await conn.execute(insert(_A).values(send_id=send_id, chunk=chunk, people=list(people)))
    await conn.execute(update(_S).where(_S.c.id == send_id).values(
        people_count=_S.c.people_count + len(people)))


def id_values(conn: Conn, ids: Sequence[str]) -> Any:
    """A one-column table (``value``) of ``ids`` from one parameter, whatever their number:
    ``json_each`` on SQLite, ``unnest`` on PostgreSQL (no 100,000-parameter statements)."""
    if conn.dialect.name == "sqlite":
        return func.json_each(bindparam(None, json.dumps(list(ids)), type_=String)
                              ).table_valued("value")
    return func.unnest(bindparam(None, list(ids), type_=postgresql.ARRAY(String))
                       ).table_valued("value").render_derived()


async def not_people(conn: Conn, org_id: str, ids: Sequence[str]) -> set[str]:
    """Those of ``ids`` (canonical GUIDs) that are not people of the org: one statement, one
    primary-key lookup per id."""
    given = id_values(conn, ids)
    return set((await conn.execute(select(given.c.value).where(~exists(
        select(literal(1)).where(t.people.c.org_id == org_id,
                                 t.people.c.id == given.c.value))))).scalars())


async def audience(conn: Conn, send_id: str) -> list[str]:
    """The whole audience of a send, in order (reading a send back; fan-out reads chunks)."""
    out: list[str] = []
    for row in (await conn.execute(select(_A.c.people).where(_A.c.send_id == send_id)
                                   .order_by(_A.c.chunk))).all():
        out.extend(row.people)
    return out


async def audience_chunk(conn: Conn, send_id: str, chunk: int) -> list[str]:
    """The people of one chunk of the send's audience (one primary-key lookup)."""
    row = (await conn.execute(select(_A.c.people).where(_A.c.send_id == send_id,
                                                        _A.c.chunk == chunk))).first()
    return [] if row is None else list(row.people)


def _send(row: Any) -> SendRow:
    return SendRow(id=row.id, org_id=row.org_id, app_id=row.app_id,
                   people_count=row.people_count, message=dict(row.message), state=row.state,
                   fanned_out_people=row.fanned_out_people, journey_id=row.journey_id,
                   journey_step_id=row.journey_step_id, message_id=row.message_id,
                   created_at=row.created_at, expires_at=row.expires_at,
                   category=row.category, segment_id=row.segment_id,
                   rules=None if row.rules is None else dict(row.rules))


async def get(conn: Conn, send_id: str, org_id: str | None = None) -> SendRow | None:
    query = select(_S).where(_S.c.id == send_id)
    if org_id is not None:
        query = query.where(_S.c.org_id == org_id)
    row = (await conn.execute(query)).first()
    return None if row is None else _send(row)


async def delivery_counts(conn: Conn, send_id: str) -> dict[str, int]:
    """Deliveries of the send per state."""
    return {r.state: int(r.n) for r in (await conn.execute(
        select(_DL.c.state, func.count().label("n")).where(_DL.c.send_id == send_id)
        .group_by(_DL.c.state))).all()}


async def deliveries(conn: Conn, send_id: str, *, after: str | None,
                     limit: int) -> list[DeliveryRead]:
    query = select(_DL).where(_DL.c.send_id == send_id)
    if after:
        query = query.where(_DL.c.id > after)
    rows = (await conn.execute(query.order_by(_DL.c.id).limit(limit))).all()
    return [DeliveryRead(id=r.id, person_id=r.person_id, device_id=r.device_id,
                         platform=r.platform, state=r.state, reason=r.reason, detail=r.detail,
                         provider_id=r.provider_id, attempts=r.attempts,
                         updated_at=r.updated_at) for r in rows]


# ---------------------------------------------------------------------------- fan-out

_DELIVERY_COLUMNS = ("id", "send_id", "org_id", "app_id", "person_id", "device_id", "platform",
                     "state", "attempts", "sole", "created_at", "updated_at")
# A re-run page finds its rows there already: (send, device) is unique.
_INSERT_DELIVERIES = DriverMany(
    lambda d: (postgresql if d.name == "postgresql" else sqlite).insert(_DL)
    .on_conflict_do_nothing(index_elements=["send_id", "device_id"]),
    _DELIVERY_COLUMNS, column_keys=_DELIVERY_COLUMNS)


async def active_devices(conn: Conn, app_id: str, person_ids: Sequence[str],
                         limit: int | None = None) -> list[ActiveDevice]:
    """The active devices of the app of those people, by person id (the devices' (app,
    person, state) index gives that order: ``limit`` stops the read early)."""
    among = (_D.c.person_id.in_(select(id_values(conn, person_ids).c.value))
             if conn.dialect.name == "sqlite" else _id_in(conn, _D.c.person_id, person_ids))
    query = select(_D.c.id, _D.c.person_id, _D.c.platform).where(
        _D.c.app_id == app_id, _D.c.state == "active", among).order_by(_D.c.person_id)
    if limit is not None:
        query = query.limit(limit)
    return [ActiveDevice(r.id, r.person_id, r.platform)
            for r in (await conn.execute(query)).all()]


async def insert_deliveries(conn: Conn, rows: Sequence[tuple[Any, ...]]) -> None:
    """Pending deliveries, tuples of (id, send_id, org_id, app_id, person_id, device_id,
    platform, state, attempts, sole, created_at, updated_at); existing (send, device) pairs are
    skipped."""
    if rows:
        await _INSERT_DELIVERIES.run(conn, rows)


async def advance_fanout(conn: Conn, send_id: str, *, people_done: int, devices: int,
                         last: bool, now: datetime) -> None:
    await conn.execute(update(_S).where(_S.c.id == send_id).values(
        state="fanned_out" if last else "fanning_out", fanned_out_people=people_done,
        device_count=_S.c.device_count + devices, fanned_out_at=now if last else None))


async def add_devices(conn: Conn, send_id: str, devices: int) -> None:
    """Deliveries added after fan-out (held pushes released)."""
    if devices:
        await conn.execute(update(_S).where(_S.c.id == send_id).values(
            device_count=_S.c.device_count + devices))


# --------------------------------------------------------------------------- delivery

# Web Push keys only for web devices: the other platforms' JSON ``null`` is not decoded per row.
_WEB_KEYS = case((_DL.c.platform == "web", _D.c.web_keys)).label("web_keys")

# An outcome, for a delivery still pending (another worker may have finished it meanwhile).
FINISH_COLUMNS = ("b_id", "b_state", "b_reason", "b_detail", "b_provider_id", "b_attempts",
                  "b_now")
_FINISH = DriverMany(
    lambda _d: update(_DL).where(_DL.c.id == bindparam("b_id"), _DL.c.state == "pending")
    .values(state=bindparam("b_state"), reason=bindparam("b_reason"),
            detail=bindparam("b_detail"), provider_id=bindparam("b_provider_id"),
            attempts=bindparam("b_attempts"), updated_at=bindparam("b_now")),
    FINISH_COLUMNS)


def _id_in(conn: Conn, column: Any, ids: Sequence[str]) -> ColumnElement[bool]:
    """``column`` among ``ids``: one array parameter on PostgreSQL (one plan, a primary key
    lookup, whatever the number of ids), an ``IN`` list on SQLite."""
    if conn.dialect.name == "sqlite":
        return column.in_(ids)  # type: ignore[no-any-return]
    return column == any_(bindparam(None, list(ids), type_=postgresql.ARRAY(t.GUID)))  # type: ignore[no-any-return]


async def pending_deliveries(conn: Conn, ids: Sequence[str]) -> list[PendingDelivery]:
    """The still-pending deliveries among ``ids``, with their device.

    Selected by primary key only, the state checked here: with a predicate on ``state``,
    PostgreSQL once planned a scan of every pending row instead of the key lookups."""
    out: list[PendingDelivery] = []
    for i in range(0, len(ids), _CHUNK):
        out.extend(PendingDelivery(r.id, r.send_id, r.app_id, r.platform, r.attempts,
                                   r.device_id, r.person_id, r.sole, r.token, r.web_keys,
                                   r.device_state)
                   for r in (await conn.execute(
                       select(_DL.c.id, _DL.c.send_id, _DL.c.app_id, _DL.c.platform,
                              _DL.c.state, _DL.c.attempts, _DL.c.device_id, _DL.c.person_id,
                              _DL.c.sole, _D.c.token, _WEB_KEYS, _D.c.state.label("device_state"))
                       .join(_D, _D.c.id == _DL.c.device_id, isouter=True)
                       .where(_id_in(conn, _DL.c.id, ids[i:i + _CHUNK]))
                   )).all() if r.state == "pending")
    return out


async def sends_to_deliver(conn: Conn, send_ids: Sequence[str]) -> list[SendToDeliver]:
    out: list[SendToDeliver] = []
    for i in range(0, len(send_ids), _CHUNK):
        out.extend(SendToDeliver(s.id, s.org_id, s.journey_id, s.journey_step_id, s.message_id,
                                 s.expires_at, s.message)
                   for s in (await conn.execute(
                       select(_S.c.id, _S.c.org_id, _S.c.journey_id, _S.c.journey_step_id,
                              _S.c.message_id, _S.c.expires_at, _S.c.message)
                       .where(_S.c.id.in_(send_ids[i:i + _CHUNK])))).all())
    return out


class FinishedElsewhere(Exception):
    """Raised inside an outcome transaction on SQLite when a delivery was no longer pending:
    the transaction rolls back and the caller writes again with ``finish_checked``."""


async def finish(conn: Conn, outcomes: Sequence[tuple[Any, ...]]) -> set[str]:
    """Write outcomes (tuples in ``FINISH_COLUMNS`` order, the delivery id first) of
    deliveries still pending; returns the ids written.

    SQLite: a write transaction holds the database's only writer lock and the UPDATE only
    touches pending rows, so when it changed every row no other worker finished any of them,
    proven without a re-select; otherwise ``FinishedElsewhere`` rolls the transaction back.
    PostgreSQL: ``finish_checked``."""
    if conn.dialect.name == "sqlite":
        if await _FINISH.run(conn, outcomes) != len(outcomes):
            raise FinishedElsewhere
        return {o[0] for o in outcomes}
    return await finish_checked(conn, outcomes)


async def finish_checked(conn: Conn, outcomes: Sequence[tuple[Any, ...]]) -> set[str]:
    """``finish`` for the deliveries still pending once checked (PostgreSQL: their rows stay
    locked until the transaction ends): another worker may have finished some meanwhile (it
    re-ran the job after this one's lease expired); those are left as they are."""
    pending = await _still_pending(conn, [o[0] for o in outcomes])
    await _FINISH.run(conn, [o for o in outcomes if o[0] in pending])
    return pending


async def _still_pending(conn: Conn, ids: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for i in range(0, len(ids), _CHUNK):
        query = select(_DL.c.id, _DL.c.state).where(_id_in(conn, _DL.c.id, ids[i:i + _CHUNK]))
        if conn.dialect.name != "sqlite":
            query = query.with_for_update()
        out.update(r.id for r in (await conn.execute(query)).all() if r.state == "pending")
    return out


async def set_device_states(conn: Conn, updates: Sequence[Mapping[str, Any]]) -> None:
    """Device states after an outcome: dicts of b_device, b_dstate, b_dreason, b_now."""
    if updates:
        await conn.execute(
            update(_D).where(_D.c.id == bindparam("b_device"))
            .values(state=bindparam("b_dstate"), state_reason=bindparam("b_dreason"),
                    state_changed_at=bindparam("b_now"), updated_at=bindparam("b_now")),
            list(updates))
