"""Reports (the read path): figures over a time range, and a person's timeline.

``report`` sums roll-ups, never interaction rows (``clarion.store.reports``): the work depends
on the hours and metrics in the range, not on how many interactions there were (bench/reports:
well under a second over 10 M interactions). The figures and rates are computed by
``clarion.domain.reports`` and defined in docs/reports.md.

``timeline`` lists what happened to one person, newest first: every send that named them (with
each device's outcome, or why nothing was sent) and every interaction they reported.
"""

from __future__ import annotations

from datetime import datetime

from clarion.clock import Clock
from clarion.domain.report_range import (
    HOURS,
    Granularity,
    checked_time,
    default_range,
    report_range,
)
from clarion.domain.reports import Report, Scope, assemble, check_scope
from clarion.domain.timeline import TimelineEntry, newest_first, with_outcome
from clarion.errors import InvalidInput, NotFound
from clarion.services.apps import require_app
from clarion.services.orgs import require_org
from clarion.services.people import require_person
from clarion.store import compliance
from clarion.store import reports as store
from clarion.store.db import Database

MAX_TIMELINE = 1000


class Reports:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def report(self, org_id: str, *, scope: Scope, scope_id: str | None,
                     since: datetime | None, until: datetime | None,
                     granularity: Granularity, by_platform: bool) -> Report:
        """Totals, rates, a zero-filled series and optionally a per-platform split.

        ``until`` defaults to now, ``since`` to 24 hours (hourly) or 7 days (daily) before it.
        The range is widened to whole buckets (hours, or UTC days); the report gives the range
        it covers. Raises InvalidInput for a bad scope or range, NotFound for an app or send
        that is not the org's (another org's items are never visible)."""
        check_scope(scope, scope_id)
        start, end = default_range(self._clock.now(), granularity, since, until)
        hours = report_range(start, end, granularity)
        send_app = None
        async with self._db.read() as conn:
            await require_org(conn, org_id)
            if scope == "send":
                assert scope_id is not None
                send_app = await store.send_app(conn, org_id, scope_id)
                if send_app is None:
                    raise NotFound(f"send {scope_id} does not exist in organization {org_id}",
                                   field="id",
                                   fix=f"Use an id returned by `clarion send` or POST "
                                   f"/v1/orgs/{org_id}/sends.")
            elif scope == "app":
                await require_app(conn, org_id, scope_id or "", field="id")
            rows = await store.sums(conn, org_id, scope=scope, scope_id=scope_id,
                                    send_app_id=send_app, hours=hours,
                                    step=HOURS[granularity], by_platform=by_platform)
        return assemble(org_id=org_id, scope=scope, scope_id=scope_id, hours=hours,
                        by_platform=by_platform, rows=rows)

    async def timeline(self, org_id: str, person_id: str, *, limit: int = 100,
                       before: datetime | None = None) -> list[TimelineEntry]:
        """Every send to the person and every interaction they reported, newest first.

        Pages: pass the last entry's ``at`` as ``before`` (entries strictly older come next).
        A page that ends inside a group of entries sharing one timestamp includes that whole
        group, so no entry is skipped between pages (the page may then be a little longer
        than ``limit``)."""
        if not 1 <= limit <= MAX_TIMELINE:
            raise InvalidInput(f"limit must be between 1 and {MAX_TIMELINE}", field="limit",
                               fix="Page with before=<the last entry's time>.")
        if before is not None:
            before = checked_time(before, "before")
        async with self._db.read() as conn:
            person_id = await require_person(conn, org_id, person_id, field="person_id")
            merged = newest_first([
                *await store.person_sends(conn, org_id, person_id, before=before,
                                          limit=limit + 1),
                *await store.person_interactions(conn, org_id, person_id, before=before,
                                                 limit=limit + 1),
                *_ruled(await compliance.person_events(conn, org_id, person_id, before=before,
                                                       limit=limit + 1))])
            if len(merged) > limit:  # complete the group of entries sharing the last time
                last = merged[limit - 1].at
                merged = [e for e in merged[:limit] if e.at != last] + newest_first([
                    *await store.person_sends(conn, org_id, person_id, at=last),
                    *await store.person_interactions(conn, org_id, person_id, at=last),
                    *_ruled(await compliance.person_events(conn, org_id, person_id,
                                                           at=last))])
            outcomes = await store.person_outcomes(
                conn, person_id, [e.send_id for e in merged if e.kind == "send"])
        return [with_outcome(e, outcomes.get(e.send_id, [])) if e.kind == "send" else e
                for e in merged]


def _ruled(events: list[compliance.ComplianceEvent]) -> list[TimelineEntry]:
    """What compliance rules did to the person, as timeline entries."""
    return [TimelineEntry(at=e.at, kind=e.kind, send_id=e.send_id, app_id=e.app_id,
                          reason=e.reason, until=e.until) for e in events]
