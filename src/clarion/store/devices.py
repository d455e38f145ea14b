"""Queries of devices as people and operators read them, and of tracked registration
requests. (Registration processing writes devices through ``clarion.store.registrations``.)"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row

from clarion.domain.devices import DeviceRead, RegistrationRead
from clarion.store import tables as t
from clarion.store.db import Conn

_D = t.devices
_R = t.registration_requests


def _device(row: Row[Any]) -> DeviceRead:
    return DeviceRead(
        id=row.id, app_id=row.app_id, person_id=row.person_id, platform=row.platform,
        token=row.token, state=row.state, state_reason=row.state_reason,
        state_changed_at=row.state_changed_at, created_at=row.created_at,
        last_registered_at=row.last_registered_at)


async def page(conn: Conn, org_id: str, *, app_id: str | None, person_id: str | None,
               state: str | None, after: str | None, limit: int) -> list[DeviceRead]:
    query = select(_D).where(_D.c.org_id == org_id)
    if app_id:
        query = query.where(_D.c.app_id == app_id)
    if person_id:
        query = query.where(_D.c.person_id == person_id)
    if state:
        query = query.where(_D.c.state == state)
    if after:
        query = query.where(_D.c.id > after)
    rows = (await conn.execute(query.order_by(_D.c.id).limit(limit))).all()
    return [_device(r) for r in rows]


async def registration(conn: Conn, org_id: str, request_id: str) -> RegistrationRead | None:
    row = (await conn.execute(
        select(_R).where(_R.c.id == request_id, _R.c.org_id == org_id))).first()
    if row is None:
        return None
    return RegistrationRead(
        id=row.id, app_id=row.app_id, kind=row.kind, user_id=row.user_id,
        token_kind=row.token_kind, status=row.status, failure_reason=row.failure_reason,
        detail=row.detail, created_at=row.created_at, finished_at=row.finished_at)
