"""A person's devices as Clarion holds them, with their state and its reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from clarion.errors import InvalidInput, NotFound
from clarion.store import tables as t
from clarion.store.db import Database

_D = t.devices
STATES = ("active", "invalid", "mismatch")


@dataclass(frozen=True, slots=True)
class DeviceRead:
    id: str
    app_id: str
    person_id: str
    platform: str
    token: str
    state: str
    state_reason: str | None
    state_changed_at: datetime | None
    created_at: datetime
    last_registered_at: datetime


@dataclass(frozen=True, slots=True)
class RegistrationRead:
    id: str
    app_id: str
    kind: str
    user_id: str
    token_kind: str | None
    status: str
    failure_reason: str | None
    detail: str | None
    created_at: datetime
    finished_at: datetime | None


def _device(row: Any) -> DeviceRead:
    return DeviceRead(
        id=row.id, app_id=row.app_id, person_id=row.person_id, platform=row.platform,
        token=row.token, state=row.state, state_reason=row.state_reason,
        state_changed_at=row.state_changed_at, created_at=row.created_at,
        last_registered_at=row.last_registered_at)


async def list_devices(
    *,
    db: Database,
    org_id: str,
    app_id: str | None = None,
    person_id: str | None = None,
    state: str | None = None,
    limit: int = 100,
    after: str | None = None,
) -> list[DeviceRead]:
    if state is not None and state not in STATES:
        raise InvalidInput(f"unknown device state {state!r}", field="state",
                           fix=f"Use one of: {', '.join(STATES)}.")
    query = select(_D).where(_D.c.org_id == org_id)
    if app_id:
        query = query.where(_D.c.app_id == app_id)
    if person_id:
        query = query.where(_D.c.person_id == person_id)
    if state:
        query = query.where(_D.c.state == state)
    if after:
        query = query.where(_D.c.id > after)
    query = query.order_by(_D.c.id).limit(max(1, min(limit, 1000)))
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    return [_device(r) for r in rows]


async def get_registration(*, db: Database, org_id: str, request_id: str) -> RegistrationRead:
    r = t.registration_requests
    async with db.read() as conn:
        row = (await conn.execute(
            select(r).where(r.c.id == request_id, r.c.org_id == org_id))).first()
    if row is None:
        raise NotFound(f"registration request {request_id} is unknown",
                       fix="Only requests sent with x-ms-track-registration: true are kept, "
                       "and only for the retention period (CLARION_REGISTRATION_STATUS_"
                       "RETENTION_DAYS).")
    return RegistrationRead(
        id=row.id, app_id=row.app_id, kind=row.kind, user_id=row.user_id,
        token_kind=row.token_kind, status=row.status, failure_reason=row.failure_reason,
        detail=row.detail, created_at=row.created_at, finished_at=row.finished_at)
