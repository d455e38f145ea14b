"""Queries of device registration: stored requests (tracked, or with a callback), the devices
a batch of registrations touches, and the statements that apply a processed batch
(set-based: a handful of statements per batch, never per request, because on SQLite the
single writer is shared with the API's group commits).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, update

from clarion.domain.registration import PendingRequest, Status
from clarion.store import tables as t
from clarion.store.db import Conn

log = logging.getLogger(__name__)

_R = t.registration_requests
_D = t.devices
TABLE = _R  # the group commit inserts accepted requests into it


def chunks(items: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    """Bounded IN lists: drivers cap bound parameters (asyncpg 32,767; SQLite 32,766)."""
    for i in range(0, len(items), size):
        yield items[i:i + size]


@dataclass(frozen=True, slots=True)
class StatusRow:
    id: str
    status: str
    failure_reason: str | None


@dataclass(frozen=True, slots=True)
class ExistingDevice:
    id: str
    person_id: str
    token_hash: str
    state: str


@dataclass(frozen=True, slots=True)
class NewDevice:
    org_id: str
    person_id: str
    platform: str
    token: str
    token_hash: str
    web_keys: dict[str, str] | None


@dataclass(frozen=True, slots=True)
class Revived:
    device_id: str
    token: str
    web_keys: dict[str, str] | None


@dataclass(frozen=True, slots=True)
class Finished:
    """A stored request's outcome."""

    id: str
    status: str
    failure_reason: str | None
    detail: str | None


async def tracked_statuses(conn: Conn, org_id: str, app_id: str,
                           request_ids: Sequence[str]) -> list[StatusRow]:
    rows = (await conn.execute(
        select(_R.c.id, _R.c.status, _R.c.failure_reason).where(
            _R.c.id.in_(set(request_ids)), _R.c.app_id == app_id, _R.c.org_id == org_id,
            _R.c.tracked.is_(True)))).all()
    return [StatusRow(r.id, r.status, r.failure_reason) for r in rows]


async def pending_requests(conn: Conn, ids: Sequence[str]) -> list[PendingRequest]:
    """The stored requests among ``ids`` still pending."""
    out: list[PendingRequest] = []
    for chunk in chunks(ids):
        out.extend(PendingRequest(
            id=r.id, org_id=r.org_id, app_id=r.app_id, api_token_id=r.api_token_id,
            kind=r.kind, user_id=r.user_id, token_kind=r.token_kind, token=r.token,
            web_keys=r.web_keys, stored=True, tracked=r.tracked, callback_url=r.callback_url,
            callback_headers=r.callback_headers, callback_signature=r.callback_signature)
            for r in (await conn.execute(select(_R).where(
                _R.c.id.in_(chunk), _R.c.status == Status.PENDING.value))).all())
    return out


async def devices_with_tokens(conn: Conn, app_id: str,
                              token_hashes: Sequence[str]) -> list[ExistingDevice]:
    out: list[ExistingDevice] = []
    for chunk in chunks(token_hashes):
        out += [ExistingDevice(r.id, r.person_id, r.token_hash, r.state)
                for r in (await conn.execute(
                    select(_D.c.id, _D.c.person_id, _D.c.token_hash, _D.c.state)
                    .where(_D.c.app_id == app_id, _D.c.token_hash.in_(chunk)))).all()]
    return out


async def move_tokens(conn: Conn, app_id: str, owners: Mapping[str, str]) -> None:
    """Take each token (by hash) away from everyone but its owner (token hash -> person)."""
    victims: list[str] = []
    for chunk in chunks(list(owners)):
        rows = (await conn.execute(select(_D.c.id, _D.c.person_id, _D.c.token_hash).where(
            _D.c.app_id == app_id, _D.c.token_hash.in_(chunk)))).all()
        victims += [r.id for r in rows if r.person_id != owners[r.token_hash]]
    for chunk in chunks(victims):
        await conn.execute(delete(_D).where(_D.c.id.in_(chunk)))


async def insert_devices(conn: Conn, app_id: str, devices: Sequence[NewDevice],
                         now: datetime) -> None:
    if devices:
        await conn.execute(insert(_D), [{
            "id": str(uuid.uuid4()), "org_id": d.org_id, "app_id": app_id,
            "person_id": d.person_id, "platform": d.platform, "token": d.token,
            "token_hash": d.token_hash, "web_keys": d.web_keys, "state": "active",
            "state_reason": None, "state_changed_at": now, "created_at": now,
            "updated_at": now, "last_registered_at": now} for d in devices])


async def revive_devices(conn: Conn, revived: Sequence[Revived], now: datetime) -> None:
    """Make devices active again (registered anew, possibly with new Web Push keys)."""
    if revived:
        await conn.execute(
            update(_D).where(_D.c.id == bindparam("b_id")).values(
                state="active", state_reason=None, state_changed_at=now, updated_at=now,
                last_registered_at=now, web_keys=bindparam("b_keys"),
                token=bindparam("b_token")),
            [{"b_id": r.device_id, "b_keys": r.web_keys, "b_token": r.token}
             for r in revived])


async def evict_over_cap(conn: Conn, app_id: str, person_ids: Sequence[str], cap: int) -> None:
    """Delete the oldest devices of those people beyond ``cap``: one grouped count for the
    batch; only people over the cap cost more statements."""
    over: list[tuple[str, int]] = []
    for chunk in chunks(person_ids):
        over += [(r.person_id, int(r.n)) for r in (await conn.execute(
            select(_D.c.person_id, func.count().label("n")).where(
                _D.c.app_id == app_id, _D.c.person_id.in_(chunk))
            .group_by(_D.c.person_id).having(func.count() > cap))).all()]
    for person_id, count in over:
        oldest = select(_D.c.id).where(
            _D.c.app_id == app_id, _D.c.person_id == person_id).order_by(
            _D.c.last_registered_at.asc(), _D.c.created_at.asc()).limit(count - cap)
        victims = list((await conn.execute(oldest)).scalars())
        await conn.execute(delete(_D).where(_D.c.id.in_(victims)))
        log.info("app %s person %s: evicted %d oldest device(s) over the cap of %d",
                 app_id, person_id, len(victims), cap)


async def delete_devices(conn: Conn, app_id: str, person_id: str,
                         token_hashes: set[str] | None) -> None:
    """A person's devices of the app: all of them, or those with one of ``token_hashes``."""
    cond = and_(_D.c.app_id == app_id, _D.c.person_id == person_id)
    if token_hashes is not None:
        cond = and_(cond, _D.c.token_hash.in_(token_hashes))
    await conn.execute(delete(_D).where(cond))


async def finish_tracked(conn: Conn, finished: Sequence[Finished], now: datetime) -> None:
    if finished:
        await conn.execute(update(_R).where(_R.c.id == bindparam("b_id")).values(
            status=bindparam("b_status"), failure_reason=bindparam("b_reason"),
            detail=bindparam("b_detail"), finished_at=now),
            [{"b_id": f.id, "b_status": f.status, "b_reason": f.failure_reason,
              "b_detail": f.detail} for f in finished])


async def note_pending(conn: Conn, notes: Sequence[tuple[str, str]]) -> None:
    """Say why requests are still ``Pending`` (``(id, detail)`` pairs); finished ones are left
    as they are."""
    if notes:
        await conn.execute(update(_R).where(
            _R.c.id == bindparam("b_id"), _R.c.status == Status.PENDING.value).values(
            detail=bindparam("b_detail")), [{"b_id": i, "b_detail": d} for i, d in notes])


async def forget(conn: Conn, ids: Sequence[str]) -> None:
    for chunk in chunks(ids):
        await conn.execute(delete(_R).where(_R.c.id.in_(chunk)))


async def purge_finished(conn: Conn, before: datetime) -> int:
    """Forget finished requests finished before ``before``."""
    result = await conn.execute(delete(_R).where(
        _R.c.status != Status.PENDING.value, _R.c.finished_at < before))
    return int(result.rowcount or 0)
