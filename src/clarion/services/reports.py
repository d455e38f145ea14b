"""Reports (the read path): figures over a time range, and a person's timeline.

``report`` sums roll-ups, never interaction rows: an org, app, journey, journey step or message
report reads ``report_rollups`` (one primary-key range scan: org, scope, id, hours), a send
report reads that send's ``report_counters`` rows (its key leads with org, app, send). Either
way the work depends on the hours and metrics in the range, not on how many interactions there
were (bench/reports: well under a second over 10 M interactions). The figures and rates are
computed by ``clarion.domain.reports`` and defined in docs/reports.md.

``timeline`` lists what happened to one person, newest first: every send that named them (with
each device's outcome, or why nothing was sent) and every interaction they reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, cast, exists, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB

from clarion.domain.report_range import HOURS, Granularity, checked_time, report_range, utc
from clarion.domain.reports import MetricRow, Report, Scope, assemble, check_scope
from clarion.errors import InvalidInput, NotFound
from clarion.store import tables as t
from clarion.store.db import Database

_S = t.sends
_DL = t.deliveries
_I = t.interactions
MAX_TIMELINE = 1000


async def report(
    *, db: Database, org_id: str, scope: Scope, scope_id: str | None, since: datetime,
    until: datetime, granularity: Granularity, by_platform: bool,
) -> Report:
    """Totals, rates, a zero-filled series and optionally a per-platform split.

    The range is widened to whole buckets (hours, or UTC days); the report gives the range it
    covers. Raises InvalidInput for a bad scope or range, NotFound for an app or send that is
    not the org's (another org's items are never visible)."""
    check_scope(scope, scope_id)
    hours = report_range(since, until, granularity)
    step = HOURS[granularity]
    async with db.read() as conn:
        if scope == "send":
            send = (await conn.execute(select(_S.c.app_id).where(
                _S.c.id == scope_id, _S.c.org_id == org_id))).first()
            if send is None:
                raise NotFound(f"send {scope_id} does not exist in this organization",
                               field="id", fix="Use an id returned by POST /v1/orgs/{org}/sends.")
            table: Any = t.report_counters
            where: list[ColumnElement[bool]] = [
                table.c.org_id == org_id, table.c.app_id == send.app_id,
                table.c.send_id == scope_id]
        else:
            if scope == "app" and (await conn.execute(select(t.apps.c.id).where(
                    t.apps.c.id == scope_id, t.apps.c.org_id == org_id))).first() is None:
                raise NotFound(f"app {scope_id} does not exist in this organization",
                               field="id", fix="List the apps with GET /v1/orgs/{org}/apps.")
            table = t.report_rollups
            where = [table.c.org_id == org_id, table.c.scope == scope,
                     table.c.scope_id == (scope_id or "")]
        bucket = table.c.hour if step == 1 else table.c.hour // step * step
        cols: list[Any] = [bucket.label("bucket")]
        if by_platform:
            cols.append(table.c.platform)
        cols += [table.c.metric, func.sum(table.c.value).label("n")]
        query = (select(*cols).where(*where, table.c.hour >= hours.start,
                                     table.c.hour < hours.end)
                 .group_by(*cols[:-1]))
        result = await conn.execute(query)
        rows: list[MetricRow] = [
            (int(r.bucket), r.platform if by_platform else None, r.metric, int(r.n))
            for r in result]
    return assemble(org_id=org_id, scope=scope, scope_id=scope_id, hours=hours,
                    by_platform=by_platform, rows=rows)


# ---------------------------------------------------------------------------- timeline


@dataclass(frozen=True, slots=True)
class DeviceOutcome:
    delivery_id: str
    device_id: str
    platform: str
    state: str  # pending | accepted | invalid_token | mismatch | rejected | expired …
    reason: str | None
    detail: str | None
    attempts: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    kind: str  # send | delivered | opened | clicked | dismissed
    send_id: str
    app_id: str
    journey_id: str | None = None
    journey_step_id: str | None = None
    message_id: str | None = None
    # sends
    title: str | None = None
    outcome: str | None = None  # sent | not_sent | pending | no_valid_device
    devices: list[DeviceOutcome] = field(default_factory=list)
    # interactions
    device_id: str | None = None
    platform: str | None = None
    source: str | None = None  # cij_events | cij_legacy | link

    @property
    def sort_key(self) -> tuple[datetime, int, str]:
        return (self.at, _RANK.get(self.kind, 9), self.device_id or "")


_RANK = {"send": 0, "delivered": 1, "opened": 2, "clicked": 3, "dismissed": 4}


def _names_person(db: Database, person_id: str) -> ColumnElement[bool]:
    """``sends.user_ids`` (a JSON array) contains the person."""
    if db.is_sqlite:
        each = func.json_each(_S.c.user_ids).table_valued("value")
        return exists(select(literal(1)).select_from(each).where(each.c.value == person_id))
    return cast(_S.c.user_ids, JSONB).contains([person_id])


async def timeline(
    *, db: Database, org_id: str, person_id: str, limit: int = 100,
    before: datetime | None = None,
) -> list[TimelineEntry]:
    """Every send to the person and every interaction they reported, newest first.

    Pages: pass the last entry's ``at`` as ``before`` (entries strictly older come next). A
    page that ends inside a group of entries sharing one timestamp includes that whole group,
    so no entry is skipped between pages (the page may then be a little longer than
    ``limit``)."""
    if not 1 <= limit <= MAX_TIMELINE:
        raise InvalidInput(f"limit must be between 1 and {MAX_TIMELINE}", field="limit",
                           fix="Page with before=<the last entry's time>.")
    async with db.read() as conn:
        person = (await conn.execute(select(t.people.c.id).where(
            t.people.c.org_id == org_id, t.people.c.id == person_id))).first()
        if person is None:
            raise NotFound(f"person {person_id} does not exist in this organization",
                           field="person_id", fix="Look people up with GET /v1/orgs/{org}/people.")
        send_where: list[ColumnElement[bool]] = [_S.c.org_id == org_id,
                                                 _names_person(db, person_id)]
        act_where: list[ColumnElement[bool]] = [_I.c.org_id == org_id,
                                                _I.c.person_id == person_id]
        if before is not None:
            before = checked_time(before, "before")
            send_where.append(_S.c.created_at < before)
            act_where.append(_I.c.occurred_at < before)
        sends = (await conn.execute(_send_query(send_where).limit(limit + 1))).all()
        acts = (await conn.execute(_act_query(act_where).limit(limit + 1))).all()
        merged = sorted([*map(_send_row, sends), *map(_act_row, acts)],
                        key=lambda e: e.sort_key, reverse=True)
        if len(merged) > limit:  # complete the group of entries sharing the last timestamp
            last = merged[limit - 1].at
            merged = [e for e in merged[:limit] if e.at != last]
            ties_s = (await conn.execute(_send_query(
                [*send_where, _S.c.created_at == last]))).all()
            ties_a = (await conn.execute(_act_query(
                [*act_where, _I.c.occurred_at == last]))).all()
            merged += sorted([*map(_send_row, ties_s), *map(_act_row, ties_a)],
                             key=lambda e: e.sort_key, reverse=True)
        send_ids = [e.send_id for e in merged if e.kind == "send"]
        outcomes: dict[str, list[DeviceOutcome]] = {}
        for i in range(0, len(send_ids), 500):
            for d in (await conn.execute(select(_DL).where(
                    _DL.c.send_id.in_(send_ids[i:i + 500]), _DL.c.person_id == person_id)
                    .order_by(_DL.c.send_id, _DL.c.platform, _DL.c.device_id))).all():
                outcomes.setdefault(d.send_id, []).append(DeviceOutcome(
                    delivery_id=d.id, device_id=d.device_id, platform=d.platform,
                    state=d.state, reason=d.reason, detail=d.detail, attempts=d.attempts,
                    updated_at=utc(d.updated_at)))
    return [_with_outcome(e, outcomes.get(e.send_id, [])) if e.kind == "send" else e
            for e in merged]


def _send_query(where: list[ColumnElement[bool]]) -> Any:
    return (select(_S.c.id, _S.c.app_id, _S.c.message, _S.c.state, _S.c.created_at,
                   _S.c.journey_id, _S.c.journey_step_id, _S.c.message_id)
            .where(and_(*where)).order_by(_S.c.created_at.desc(), _S.c.id.desc()))


def _act_query(where: list[ColumnElement[bool]]) -> Any:
    return select(_I).where(and_(*where)).order_by(_I.c.occurred_at.desc(), _I.c.id.desc())


def _send_row(r: Any) -> TimelineEntry:
    title = r.message.get("title") if isinstance(r.message, dict) else None
    return TimelineEntry(at=utc(r.created_at), kind="send", send_id=r.id, app_id=r.app_id,
                         journey_id=r.journey_id, journey_step_id=r.journey_step_id,
                         message_id=r.message_id, title=title or None,
                         outcome="fanned_out" if r.state == "fanned_out" else "pending")


def _act_row(r: Any) -> TimelineEntry:
    return TimelineEntry(at=utc(r.occurred_at), kind=r.kind, send_id=r.send_id,
                         app_id=r.app_id, journey_id=r.journey_id,
                         journey_step_id=r.journey_step_id, message_id=r.message_id,
                         device_id=r.device_id, platform=r.platform, source=r.source)


def _with_outcome(e: TimelineEntry, devices: list[DeviceOutcome]) -> TimelineEntry:
    """sent: a device accepted it; pending: still fanning out or a device still trying;
    no_valid_device: fanned out and the person had no active device; not_sent: every device
    ended without acceptance (the devices say why)."""
    states = {d.state for d in devices}
    if "accepted" in states:
        outcome = "sent"
    elif "pending" in states or (not devices and e.outcome == "pending"):
        outcome = "pending"
    elif not devices:
        outcome = "no_valid_device"
    else:
        outcome = "not_sent"
    return TimelineEntry(
        at=e.at, kind=e.kind, send_id=e.send_id, app_id=e.app_id, journey_id=e.journey_id,
        journey_step_id=e.journey_step_id, message_id=e.message_id, title=e.title,
        outcome=outcome, devices=devices)
