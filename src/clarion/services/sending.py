"""Sends: one message to every currently valid device of one or more people for one app.

``create_send`` validates, records the send and its first fan-out job in one transaction and
returns at once (202). With an ``Idempotency-Key`` the same key within 24 hours returns the
same send and queues nothing again. ``get_send`` reports the per-device outcomes; a send
*succeeded* as soon as one device accepted it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from clarion.clock import Clock
from clarion.domain.messages import Message, parse_message
from clarion.domain.text import controls
from clarion.errors import InvalidInput, NotFound
from clarion.services import people as people_service
from clarion.store import tables as t
from clarion.store.db import Database
from clarion.store.jobs import JobQueue, NewJob

FANOUT_JOB = "send.fanout"
MAX_USERS_PER_SEND = 100_000
IDEMPOTENCY_WINDOW = timedelta(hours=24)
FINAL_STATES = ("accepted", "invalid_token", "mismatch", "rejected", "expired")
_S = t.sends
_DL = t.deliveries


@dataclass(frozen=True, slots=True)
class DeliveryRead:
    id: str
    person_id: str
    device_id: str
    platform: str
    state: str
    reason: str | None
    detail: str | None
    provider_id: str | None
    attempts: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SendRead:
    id: str
    app_id: str
    user_ids: list[str]
    message: dict[str, Any]
    state: str
    created_at: datetime
    expires_at: datetime
    counts: dict[str, int]
    succeeded: bool | None  # None while nothing is decided yet
    deliveries: list[DeliveryRead]
    created: bool = True  # False when an Idempotency-Key returned an earlier send


def _user_ids(raw: Mapping[str, Any]) -> list[str]:
    single = raw.get("user_id")
    many = raw.get("user_ids")
    if (single is None) == (many is None):
        raise InvalidInput("give exactly one of user_id or user_ids", field="user_id",
                           fix="Send to one person with user_id, or to several with user_ids.")
    ids = [single] if single is not None else many
    if not isinstance(ids, list) or not ids or len(ids) > MAX_USERS_PER_SEND or not all(
        isinstance(i, str) for i in ids
    ):
        raise InvalidInput(f"user_ids must be 1 to {MAX_USERS_PER_SEND} person ids",
                           field="user_ids", fix="Split larger audiences into several sends.")
    return list(dict.fromkeys(ids))  # de-duplicated, order kept


async def create_send(
    *, db: Database, queue: JobQueue, clock: Clock, org_id: str, document: Mapping[str, Any],
    idempotency_key: str | None = None,
) -> SendRead:
    if idempotency_key is not None and not 0 < len(idempotency_key) <= 200:
        raise InvalidInput("the Idempotency-Key header must be 1 to 200 characters",
                           fix="Use a UUID per logical send.", field="Idempotency-Key")
    if idempotency_key:
        controls(idempotency_key, "Idempotency-Key")  # stored, and compared in SQL
        earlier = await _by_key(db, org_id, idempotency_key, clock.now())
        if earlier is not None:
            found = await get_send(db=db, org_id=org_id, send_id=earlier, limit=1000)
            return replace(found, created=False)
    app_id = document.get("app_id")
    if not isinstance(app_id, str):
        raise InvalidInput("app_id is required", field="app_id",
                           fix="Use the id of one of the organization's apps.")
    message = parse_message(document.get("message"))
    user_ids = _user_ids(document)
    async with db.read() as conn:
        app = (await conn.execute(select(t.apps.c.id).where(
            t.apps.c.id == app_id, t.apps.c.org_id == org_id))).first()
    if app is None:
        raise NotFound(f"app {app_id} does not exist in this organization", field="app_id",
                       fix="List the apps with GET /v1/orgs/{org}/apps.")
    known = await people_service.existing_people(db=db, org_id=org_id, person_ids=user_ids)
    unknown = [u for u in user_ids if u not in known]
    if unknown:
        raise InvalidInput(f"{len(unknown)} user id(s) are not people of this organization, "
                           f"e.g. {unknown[0]!r}", field="user_ids",
                           fix="Create or import the people first, or remove these ids.")
    send_id = str(uuid.uuid4())
    now = clock.now()
    row = {
        "id": send_id, "org_id": org_id, "app_id": app_id, "user_ids": user_ids,
        "message": message.as_dict(), "idempotency_key": idempotency_key, "state": "queued",
        "fanned_out_people": 0, "device_count": 0, "created_at": now,
        "expires_at": now + timedelta(seconds=message.ttl_seconds or 60),
        "fanned_out_at": None,
    }
    try:
        async with db.write() as conn:
            if idempotency_key:  # a key older than the window may be used again
                await conn.execute(update(_S).where(
                    _S.c.org_id == org_id, _S.c.idempotency_key == idempotency_key,
                    _S.c.created_at < now - IDEMPOTENCY_WINDOW).values(idempotency_key=None))
            await conn.execute(insert(_S).values(**row))
            await queue.enqueue(conn, [NewJob(kind=FANOUT_JOB,
                                              payload={"send_id": send_id, "offset": 0},
                                              unique_key=f"{FANOUT_JOB}:{send_id}:0")])
    except IntegrityError:
        if not idempotency_key:
            raise
        # Another request with the same key won the race: answer with its send.
        earlier = await _by_key(db, org_id, idempotency_key, now)
        if earlier is None:
            raise
        found = await get_send(db=db, org_id=org_id, send_id=earlier, limit=1000)
        return replace(found, created=False)
    return await get_send(db=db, org_id=org_id, send_id=send_id, limit=1000)


async def _by_key(db: Database, org_id: str, key: str, now: datetime) -> str | None:
    async with db.read() as conn:
        row = (await conn.execute(select(_S.c.id).where(
            _S.c.org_id == org_id, _S.c.idempotency_key == key,
            _S.c.created_at >= now - IDEMPOTENCY_WINDOW))).first()
    return None if row is None else str(row.id)


async def get_send(
    *, db: Database, org_id: str, send_id: str, limit: int = 1000, after: str | None = None
) -> SendRead:
    async with db.read() as conn:
        row = (await conn.execute(select(_S).where(
            _S.c.id == send_id, _S.c.org_id == org_id))).first()
        if row is None:
            raise NotFound(f"send {send_id} does not exist",
                           fix="Use the id returned by POST /v1/orgs/{org}/sends.")
        counts = {r.state: int(r.n) for r in (await conn.execute(
            select(_DL.c.state, func.count().label("n")).where(_DL.c.send_id == send_id)
            .group_by(_DL.c.state))).all()}
        query = select(_DL).where(_DL.c.send_id == send_id)
        if after:
            query = query.where(_DL.c.id > after)
        rows = (await conn.execute(query.order_by(_DL.c.id).limit(limit))).all()
    deliveries = [DeliveryRead(
        id=r.id, person_id=r.person_id, device_id=r.device_id, platform=r.platform,
        state=r.state, reason=r.reason, detail=r.detail, provider_id=r.provider_id,
        attempts=r.attempts, updated_at=r.updated_at) for r in rows]
    pending = counts.get("pending", 0)
    if counts.get("accepted", 0):
        succeeded: bool | None = True
    elif row.state == "fanned_out" and not pending:
        succeeded = False
    else:
        succeeded = None
    return SendRead(
        id=row.id, app_id=row.app_id, user_ids=list(row.user_ids), message=dict(row.message),
        state=_state(row.state, pending), created_at=row.created_at, expires_at=row.expires_at,
        counts=counts, succeeded=succeeded, deliveries=deliveries)


def _state(fanout_state: str, pending: int) -> str:
    if fanout_state in ("queued", "fanning_out"):
        return fanout_state
    return "sending" if pending else "done"


def message_of(row_message: Mapping[str, Any]) -> Message:
    return Message.from_dict(row_message)


def chunks(items: Sequence[str], size: int) -> list[Sequence[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
