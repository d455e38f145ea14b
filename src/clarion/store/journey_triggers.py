"""The data of the trigger that entered people into a trigger journey.

Instances do not copy the trigger's data: it stays in ``trigger_firings``, and the entering
fire is the person's latest fire of the entry trigger at or before their entry. Read for a
batch of instances at once (personalised pushes, conditions after a wait).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from clarion.store import tables as t
from clarion.store.db import Conn

_I = t.journey_instances.c
_F = t.trigger_firings.c


async def entry_data(conn: Conn, org_id: str, journey_id: str, version: int, trigger: str,
                     keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], dict[str, Any]]:
    """(person id, entry number) -> the data of the fire that entered them (missing: no fire
    found, e.g. an entry by another trigger of an earlier version)."""
    if not keys:
        return {}
    people = sorted({person for person, _ in keys})
    entered: dict[tuple[str, int], datetime] = {
        (r.person_id, r.entry_no): r.entered_at for r in (await conn.execute(
            select(_I.person_id, _I.entry_no, _I.entered_at).where(
                _I.journey_id == journey_id, _I.version == version,
                _I.person_id.in_(people)))).all()}
    if not entered:
        return {}
    latest = max(entered.values())
    fires: dict[str, list[tuple[datetime, dict[str, Any]]]] = {}
    for row in (await conn.execute(
            select(_F.person_id, _F.fired_at, _F.data).where(
                _F.org_id == org_id, _F.trigger == trigger, _F.person_id.in_(people),
                _F.fired_at <= latest).order_by(_F.fired_at))).all():
        fires.setdefault(row.person_id, []).append((row.fired_at, dict(row.data)))
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for key in keys:
        at = entered.get(key)
        if at is None:
            continue
        before = [data for fired_at, data in fires.get(key[0], []) if fired_at <= at]
        if before:
            out[key] = before[-1]
    return out
