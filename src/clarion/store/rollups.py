"""Coarse report roll-ups (``report_rollups``): the counters without the send dimension.

``report_counters`` keeps one row per (send, platform, hour, metric). Summing it for an org or
an app over 30 days reads every send's rows: millions at 10 M interactions, over a second on
SQLite even with a covering index (measured in bench/reports). So every increment of
``report_counters`` also adds the same values here, once per scope a report can ask for (see
``clarion.domain.reports.rollup_scopes``): a report over an org, an app, a journey, a journey
step or a message is one primary-key range scan whose size depends on the hours and metrics in
the range, not on the number of sends or interactions.

Rows are written in key order: two transactions adding to the same hot rows (the org's current
hour) then always lock them in the same order and cannot deadlock on PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.domain.reports import rollup_scopes
from clarion.store import tables as t

_R = t.report_rollups
_KEY = ("org_id", "scope", "scope_id", "hour", "platform", "metric")


def _upsert(dialect: Any) -> Insert:
    stmt = dialect.insert(_R)
    # Built once per dialect: ``excluded`` builds a column collection each time it is read.
    return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=list(_KEY), set_={"value": _R.c.value + stmt.excluded.value})


_UPSERT = {"postgresql": _upsert(postgresql), "sqlite": _upsert(sqlite)}


def rollup_rows(counter_rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ``report_rollups`` rows for some ``report_counters`` rows, merged and key-sorted."""
    totals: dict[tuple[str, str, str, int, str, str], int] = defaultdict(int)
    for r in counter_rows:
        for scope, scope_id in rollup_scopes(
            app_id=r["app_id"], journey_id=r.get("journey_id"),
            journey_step_id=r.get("journey_step_id"), message_id=r.get("message_id"),
        ):
            totals[(r["org_id"], scope, scope_id, r["hour"], r["platform"], r["metric"])] += (
                r["value"])
    return [dict(zip(_KEY, key, strict=True), value=value)
            for key, value in sorted(totals.items())]


async def add(conn: AsyncConnection, counter_rows: Iterable[Mapping[str, Any]]) -> None:
    """Add the roll-ups of ``counter_rows`` inside the caller's transaction."""
    rows = rollup_rows(counter_rows)
    if not rows:
        return
    await conn.execute(_UPSERT[conn.dialect.name], rows)
