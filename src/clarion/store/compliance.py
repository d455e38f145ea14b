"""Compliance rows: an org's rules, people's consent, the frequency-cap ledger, held pushes.

Every read that fan-out makes here is one statement per page whatever the page's size (the
people's ids go as one parameter). ``lock_people`` is how frequency caps stay exact with many
workers on PostgreSQL: the transaction that counts a person's recent pushes and records the new
one holds that person's row lock (taken in id order, so two pages never deadlock); SQLite
has one writer at a time, so there it is a no-op.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from clarion.store import tables as t
from clarion.store.db import Conn
from clarion.store.sends import id_values

_C = t.compliance_settings
_K = t.consents
_L = t.cap_ledger
_H = t.held_pushes
_P = t.people


@dataclass(frozen=True, slots=True)
class ComplianceRow:
    org_id: str
    quiet_times: dict[str, Any] | None
    frequency_caps: dict[str, Any] | None
    require_consent: bool
    time_zone: str | None
    updated_at: datetime
    opt_outs: bool = False  # someone opted out (consent is read even when not required)


@dataclass(frozen=True, slots=True)
class PersonFacts:
    time_zone: str | None
    phone: str | None
    attributes: dict[str, Any]

    def fields(self) -> dict[str, object]:
        """What advanced quiet-time rules match on: the attributes (country, region, state…)
        and the phone number."""
        return {**self.attributes, "phone": self.phone}


@dataclass(frozen=True, slots=True)
class ConsentRow:
    app_id: str
    person_id: str
    opted_in: bool
    source: str
    at: datetime


async def settings(conn: Conn, org_id: str) -> ComplianceRow | None:
    row = (await conn.execute(select(_C).where(_C.c.org_id == org_id))).first()
    if row is None:
        return None
    return ComplianceRow(row.org_id, row.quiet_times, row.frequency_caps,
                         bool(row.require_consent), row.time_zone, row.updated_at,
                         bool(row.opt_outs))


async def save_settings(conn: Conn, org_id: str, values: Mapping[str, Any],
                        now: datetime) -> None:
    """Set some of an org's rules (the others keep their value)."""
    changed = (await conn.execute(update(_C).where(_C.c.org_id == org_id)
                                  .values(**values, updated_at=now))).rowcount
    if not changed:
        await conn.execute(insert(_C).values(**{"org_id": org_id, "require_consent": False,
                                                **values, "updated_at": now}))


async def people_facts(conn: Conn, org_id: str, ids: Sequence[str]
                       ) -> dict[str, PersonFacts]:
    """What quiet-time rules read of these people (the org's primary-key prefix: a search
    per id, never a scan of everyone)."""
    given = id_values(conn, ids)
    rows = await conn.execute(select(_P.c.id, _P.c.time_zone, _P.c.phone, _P.c.attributes)
                              .where(_P.c.org_id == org_id,
                                     _P.c.id.in_(select(given.c.value))))
    return {r.id: PersonFacts(r.time_zone, r.phone, dict(r.attributes or {})) for r in rows}


async def consents(conn: Conn, app_id: str, ids: Sequence[str]) -> dict[str, bool]:
    """Opted in (True) or out (False) for those of ``ids`` who said either."""
    given = id_values(conn, ids)
    rows = await conn.execute(select(_K.c.person_id, _K.c.opted_in).where(
        _K.c.app_id == app_id, _K.c.person_id.in_(select(given.c.value))))
    return {r.person_id: bool(r.opted_in) for r in rows}


async def consent(conn: Conn, app_id: str, person_id: str) -> ConsentRow | None:
    row = (await conn.execute(select(_K).where(_K.c.app_id == app_id,
                                               _K.c.person_id == person_id))).first()
    if row is None:
        return None
    return ConsentRow(row.app_id, row.person_id, bool(row.opted_in), row.source, row.at)


async def set_consent(conn: Conn, org_id: str, row: ConsentRow) -> None:
    values = {"opted_in": row.opted_in, "source": row.source, "at": row.at}
    changed = (await conn.execute(update(_K).where(
        _K.c.app_id == row.app_id, _K.c.person_id == row.person_id).values(**values))).rowcount
    if not changed:
        await conn.execute(insert(_K).values(org_id=org_id, app_id=row.app_id,
                                             person_id=row.person_id, **values))


async def lock_people(conn: Conn, org_id: str, ids: Sequence[str]) -> None:
    """Row locks on those people until the transaction ends (PostgreSQL), in id order."""
    if conn.dialect.name == "sqlite" or not ids:
        return
    given = id_values(conn, ids)
    await conn.execute(select(_P.c.id).where(_P.c.org_id == org_id,
                                             _P.c.id.in_(select(given.c.value)))
                       .order_by(_P.c.id).with_for_update())


async def recent_sends(conn: Conn, org_id: str, ids: Sequence[str], channel: str,
                       since: datetime) -> dict[str, list[datetime]]:
    """Per person, when their commercial pushes on ``channel`` left after ``since``."""
    given = id_values(conn, ids)
    rows = await conn.execute(select(_L.c.person_id, _L.c.sent_at).where(
        _L.c.org_id == org_id, _L.c.person_id.in_(select(given.c.value)),
        _L.c.channel == channel, _L.c.sent_at > since))
    out: dict[str, list[datetime]] = defaultdict(list)
    for r in rows:
        out[r.person_id].append(r.sent_at)
    return out


async def record_sent(conn: Conn, org_id: str, send_id: str, channel: str,
                      people: Sequence[str], at: datetime) -> None:
    if people:
        await conn.execute(insert(_L), [
            {"org_id": org_id, "person_id": p, "channel": channel, "send_id": send_id,
             "sent_at": at} for p in people])


async def hold(conn: Conn, send_id: str, held: Mapping[str, datetime], now: datetime) -> None:
    if held:
        await conn.execute(insert(_H), [
            {"send_id": send_id, "person_id": p, "release_at": at, "held_at": now}
            for p, at in held.items()])


async def held_due(conn: Conn, send_id: str, until: datetime, limit: int) -> list[str]:
    """People of the send whose hold ends at or before ``until``, by person id."""
    rows = await conn.execute(select(_H.c.person_id).where(
        _H.c.send_id == send_id, _H.c.release_at <= until).order_by(_H.c.person_id)
        .limit(limit))
    return list(rows.scalars())


async def unhold(conn: Conn, send_id: str, people: Sequence[str]) -> int:
    """Drop those holds; how many were still there (a release run twice finds none)."""
    if not people:
        return 0
    given = id_values(conn, people)
    return int((await conn.execute(delete(_H).where(
        _H.c.send_id == send_id, _H.c.person_id.in_(select(given.c.value))))).rowcount)


async def held_count(conn: Conn, send_id: str) -> int:
    return int((await conn.execute(select(func.count()).select_from(_H)
                                   .where(_H.c.send_id == send_id))).scalar_one())


async def held_by_step(conn: Conn, journey_id: str) -> dict[str, int]:
    """People whose push of a journey step waits for the end of their quiet time, per step
    (the journey's sends: ``ix_sends_org_created`` does not help, the held rows are few)."""
    s = t.sends
    rows = await conn.execute(
        select(s.c.journey_step_id, func.count()).select_from(_H.join(s, s.c.id == _H.c.send_id))
        .where(s.c.journey_id == journey_id).group_by(s.c.journey_step_id))
    return {str(step): int(n) for step, n in rows.all() if step}


async def blocked(conn: Conn, org_id: str, app_id: str, send_id: str) -> dict[str, int]:
    """People the compliance rules kept a send from, by reason (its report counters: a
    range of their primary key)."""
    rc = t.report_counters
    rows = await conn.execute(select(rc.c.metric, func.sum(rc.c.value)).where(
        rc.c.org_id == org_id, rc.c.app_id == app_id, rc.c.send_id == send_id,
        rc.c.metric.like("blocked:%")).group_by(rc.c.metric))
    return {metric.removeprefix("blocked:"): int(n) for metric, n in rows}


_E = t.compliance_events


@dataclass(frozen=True, slots=True)
class ComplianceEvent:
    send_id: str
    app_id: str
    person_id: str
    kind: str  # held | released | blocked
    reason: str
    at: datetime
    until: datetime | None = None


async def log(conn: Conn, org_id: str, events: Sequence[ComplianceEvent]) -> None:
    if events:
        await conn.execute(insert(_E), [
            {"org_id": org_id, "app_id": e.app_id, "send_id": e.send_id,
             "person_id": e.person_id, "kind": e.kind, "reason": e.reason, "at": e.at,
             "until": e.until} for e in events])


def _event(r: Any) -> ComplianceEvent:
    return ComplianceEvent(r.send_id, r.app_id, r.person_id, r.kind, r.reason, r.at, r.until)


async def person_events(conn: Conn, org_id: str, person_id: str, *,
                        before: datetime | None = None, at: datetime | None = None,
                        limit: int | None = None) -> list[ComplianceEvent]:
    """What the rules did to the person, newest first (``before``/``at`` as the timeline's
    other reads)."""
    query = select(_E).where(_E.c.org_id == org_id, _E.c.person_id == person_id)
    if before is not None:
        query = query.where(_E.c.at < before)
    if at is not None:
        query = query.where(_E.c.at == at)
    query = query.order_by(_E.c.at.desc(), _E.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [_event(r) for r in await conn.execute(query)]


async def blocked_of_send(conn: Conn, send_id: str, *, after: int, limit: int
                          ) -> list[tuple[int, ComplianceEvent]]:
    """The send's blocked people, by event id (keyset pages: ``after`` the last id)."""
    rows = await conn.execute(select(_E).where(
        _E.c.send_id == send_id, _E.c.kind == "blocked", _E.c.id > after)
        .order_by(_E.c.id).limit(limit))
    return [(r.id, _event(r)) for r in rows]


async def app_and_person(conn: Conn, app_id: str, person_id: str) -> tuple[str, str] | None:
    """(org id, app name) when the app exists and the person is of its org."""
    a = t.apps
    row = (await conn.execute(select(a.c.org_id, a.c.name).join(
        _P, (_P.c.org_id == a.c.org_id) & (_P.c.id == person_id)).where(a.c.id == app_id))
    ).first()
    return None if row is None else (row.org_id, row.name)


async def upsert_consents(conn: Conn, org_id: str, rows: Sequence[ConsentRow], *,
                          newer_only: bool = False) -> None:
    """Set many people's choice at once (the last row of a person wins).

    With ``newer_only`` a choice is kept over one made earlier only: the row of a person with
    the latest ``at`` wins (the last of equals), and a stored choice is replaced only when it
    is not newer than that row (reports that arrive out of order). Rows are written in key
    order, so two transactions upserting the same people cannot deadlock."""
    if not rows:
        return
    latest: dict[tuple[str, str], ConsentRow] = {}
    for r in rows:
        key = (r.app_id, r.person_id)
        held = latest.get(key)
        if held is None or not newer_only or r.at >= held.at:
            latest[key] = r
    values = [{"org_id": org_id, "app_id": r.app_id, "person_id": r.person_id,
               "opted_in": r.opted_in, "source": r.source, "at": r.at}
              for r in (latest[key] for key in sorted(latest))]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(_K)
    await conn.execute(stmt.on_conflict_do_update(
        index_elements=[_K.c.app_id, _K.c.person_id],
        set_={"opted_in": stmt.excluded.opted_in, "source": stmt.excluded.source,
              "at": stmt.excluded.at},
        where=_K.c.at <= stmt.excluded.at if newer_only else None), values)


async def ids_by_email(conn: Conn, org_id: str, emails: Sequence[str]) -> dict[str, str]:
    """Lower-cased email → person id, for those of ``emails`` that name people of the org."""
    given = id_values(conn, emails)
    rows = await conn.execute(select(_P.c.email, _P.c.id).where(
        _P.c.org_id == org_id, _P.c.email.in_(select(given.c.value))))
    return {r.email: r.id for r in rows}


async def known_people(conn: Conn, org_id: str, ids: Sequence[str]) -> set[str]:
    given = id_values(conn, ids)
    rows = await conn.execute(select(_P.c.id).where(_P.c.org_id == org_id,
                                                   _P.c.id.in_(select(given.c.value))))
    return set(rows.scalars())
