"""Report roll-ups: add to ``report_counters`` inside the caller's transaction.

Every writer of a reportable fact (fan-out, delivery outcomes, interactions) calls
``increment`` in the same transaction as the fact, so the roll-ups can never disagree with the
rows they summarise. Increments are merged per key first, then written with one upsert
(``INSERT … ON CONFLICT DO UPDATE SET value = value + excluded.value``) per batch.

Metric names (defined for people in docs/reports.md): ``inflow``, ``sent``,
``not_sent:<reason>``, ``blocked:<reason>``, ``delivered``, ``opened``, ``clicked``,
``dismissed``, and ``unique_<kind>_devices`` / ``unique_<kind>_people`` /
``unique_engaged_people``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.store import rollups
from clarion.store import tables as t

_C = t.report_counters


@dataclass(frozen=True, slots=True)
class Count:
    org_id: str
    app_id: str
    send_id: str
    platform: str
    at: datetime
    metric: str
    value: int = 1
    journey_id: str | None = None
    journey_step_id: str | None = None
    message_id: str | None = None


def hour_of(at: datetime) -> int:
    return int(at.timestamp()) // 3600


async def first_times(
    conn: AsyncConnection, scopes: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Record (scope, kind) pairs; return those that were new (first occurrences)."""
    rows = [{"scope": s, "kind": k} for s, k in dict.fromkeys(scopes)]
    if not rows:
        return set()
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(t.interaction_firsts).on_conflict_do_nothing().returning(
        t.interaction_firsts.c.scope, t.interaction_firsts.c.kind)
    result = await conn.execute(stmt, rows)
    return {(r.scope, r.kind) for r in result}


async def increment(conn: AsyncConnection, counts: Iterable[Count]) -> None:
    totals: dict[tuple[str, str, str, str, int, str], int] = defaultdict(int)
    keys: dict[tuple[str, str, str, str, int, str], Count] = {}
    for c in counts:
        key = (c.org_id, c.app_id, c.send_id, c.platform, hour_of(c.at), c.metric)
        totals[key] += c.value
        keys[key] = c
    if not totals:
        return
    # Sorted by key: concurrent transactions then lock rows in the same order (no deadlocks
    # on PostgreSQL).
    rows = [{"org_id": k[0], "app_id": k[1], "send_id": k[2], "platform": k[3], "hour": k[4],
             "metric": k[5], "value": v, "journey_id": keys[k].journey_id,
             "journey_step_id": keys[k].journey_step_id, "message_id": keys[k].message_id}
            for k, v in sorted(totals.items())]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(_C)
    stmt = stmt.on_conflict_do_update(
        index_elements=["org_id", "app_id", "send_id", "platform", "hour", "metric"],
        set_={"value": _C.c.value + stmt.excluded.value},
    )
    await conn.execute(stmt, rows)
    await rollups.add(conn, rows)  # the same sums per org / app / journey (fast reports)
