"""Queries of the read path of reports: roll-up sums over a range of hours, and the rows of a
person's timeline (sends that named them, their interactions, each device's outcome).

A send report reads that send's ``report_counters`` rows (its key leads with org, app, send);
every other scope reads ``report_rollups`` (one primary-key range scan: org, scope, id, hours).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, any_, exists, func, literal, select, true

from clarion.domain.report_range import HourRange, utc
from clarion.domain.reports import MetricRow
from clarion.domain.timeline import DeviceOutcome, TimelineEntry
from clarion.store import tables as t
from clarion.store.db import Conn

_S = t.sends
_A = t.send_audience
_DL = t.deliveries
_I = t.interactions


async def send_app(conn: Conn, org_id: str, send_id: str) -> str | None:
    """The app of a send of the org (None: no such send in this org)."""
    row = (await conn.execute(select(_S.c.app_id).where(
        _S.c.id == send_id, _S.c.org_id == org_id))).first()
    return None if row is None else str(row.app_id)


async def sums(conn: Conn, org_id: str, *, scope: str, scope_id: str | None,
               send_app_id: str | None, hours: HourRange, step: int,
               by_platform: bool) -> list[MetricRow]:
    """(bucket, platform or None, metric, sum) over ``hours`` in buckets of ``step`` hours.
    ``send_app_id`` is the send's app when ``scope`` is ``send``."""
    table: Any
    if scope == "send":
        table = t.report_counters
        where: list[ColumnElement[bool]] = [
            table.c.org_id == org_id, table.c.app_id == send_app_id,
            table.c.send_id == scope_id]
    else:
        table = t.report_rollups
        where = [table.c.org_id == org_id, table.c.scope == scope,
                 table.c.scope_id == (scope_id or "")]
    bucket = table.c.hour if step == 1 else table.c.hour // step * step
    cols: list[Any] = [bucket.label("bucket")]
    if by_platform:
        cols.append(table.c.platform)
    cols += [table.c.metric, func.sum(table.c.value).label("n")]
    query = (select(*cols).where(*where, table.c.hour >= hours.start, table.c.hour < hours.end)
             .group_by(*cols[:-1]))
    return [(int(r.bucket), r.platform if by_platform else None, r.metric, int(r.n))
            for r in await conn.execute(query)]


# ---------------------------------------------------------------------------- timeline


def _names_person(conn: Conn, person_id: str) -> ColumnElement[bool]:
    """One of the send's audience chunks holds the person (a scan of the org's sends'
    audiences: no index per person, which would cost every send ~10 µs per person)."""
    if conn.dialect.name == "sqlite":
        each = func.json_each(_A.c.people).table_valued("value")
        return exists(select(literal(1)).select_from(_A.join(each, true())).where(
            _A.c.send_id == _S.c.id, each.c.value == person_id))
    return exists(select(literal(1)).where(_A.c.send_id == _S.c.id,
                                           literal(person_id) == any_(_A.c.people)))


def _send_query(where: Sequence[ColumnElement[bool]]) -> Any:
    return (select(_S.c.id, _S.c.app_id, _S.c.message, _S.c.state, _S.c.created_at,
                   _S.c.journey_id, _S.c.journey_step_id, _S.c.message_id)
            .where(and_(*where)).order_by(_S.c.created_at.desc(), _S.c.id.desc()))


def _act_query(where: Sequence[ColumnElement[bool]]) -> Any:
    return select(_I).where(and_(*where)).order_by(_I.c.occurred_at.desc(), _I.c.id.desc())


def _send_entry(r: Any) -> TimelineEntry:
    title = r.message.get("title") if isinstance(r.message, dict) else None
    return TimelineEntry(at=utc(r.created_at), kind="send", send_id=r.id, app_id=r.app_id,
                         journey_id=r.journey_id, journey_step_id=r.journey_step_id,
                         message_id=r.message_id, title=title or None,
                         outcome="fanned_out" if r.state == "fanned_out" else "pending")


def _act_entry(r: Any) -> TimelineEntry:
    return TimelineEntry(at=utc(r.occurred_at), kind=r.kind, send_id=r.send_id,
                         app_id=r.app_id, journey_id=r.journey_id,
                         journey_step_id=r.journey_step_id, message_id=r.message_id,
                         device_id=r.device_id, platform=r.platform, source=r.source)


async def _entries(conn: Conn, query: Any, column: Any, entry: Any, *,
                   before: datetime | None, at: datetime | None,
                   limit: int | None) -> list[TimelineEntry]:
    if before is not None:
        query = query.where(column < before)
    if at is not None:
        query = query.where(column == at)
    rows = (await conn.execute(query if limit is None else query.limit(limit))).all()
    return [entry(r) for r in rows]


async def person_sends(conn: Conn, org_id: str, person_id: str, *,
                       before: datetime | None = None, at: datetime | None = None,
                       limit: int | None = None) -> list[TimelineEntry]:
    """Sends naming the person, newest first: strictly before ``before``, or exactly ``at``
    (their ``outcome`` is only ``fanned_out`` or ``pending`` until ``with_outcome``)."""
    query = _send_query([_S.c.org_id == org_id, _names_person(conn, person_id)])
    return await _entries(conn, query, _S.c.created_at, _send_entry, before=before, at=at,
                          limit=limit)


async def person_interactions(conn: Conn, org_id: str, person_id: str, *,
                              before: datetime | None = None, at: datetime | None = None,
                              limit: int | None = None) -> list[TimelineEntry]:
    """The person's interactions, newest first: strictly before ``before``, or exactly
    ``at``."""
    query = _act_query([_I.c.org_id == org_id, _I.c.person_id == person_id])
    return await _entries(conn, query, _I.c.occurred_at, _act_entry, before=before, at=at,
                          limit=limit)


async def person_outcomes(conn: Conn, person_id: str, send_ids: Sequence[str]
                          ) -> dict[str, list[DeviceOutcome]]:
    """The person's device outcomes of those sends, per send, by platform and device."""
    out: dict[str, list[DeviceOutcome]] = {}
    for i in range(0, len(send_ids), 500):
        for d in (await conn.execute(select(_DL).where(
                _DL.c.send_id.in_(send_ids[i:i + 500]), _DL.c.person_id == person_id)
                .order_by(_DL.c.send_id, _DL.c.platform, _DL.c.device_id))).all():
            out.setdefault(d.send_id, []).append(DeviceOutcome(
                delivery_id=d.id, device_id=d.device_id, platform=d.platform, state=d.state,
                reason=d.reason, detail=d.detail, attempts=d.attempts,
                updated_at=utc(d.updated_at)))
    return out
