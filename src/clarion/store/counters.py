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
from typing import Any

from sqlalchemy import Insert, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.store import rollups
from clarion.store import tables as t
from clarion.store.bulk import DriverInsert

_C = t.report_counters
_F = t.interaction_firsts
_CHUNK = 500  # scopes per existence query: far below any parameter limit
_FIRSTS_PG = postgresql.insert(_F).on_conflict_do_nothing().returning(_F.c.scope, _F.c.kind)
_FIRSTS_EXISTING = select(_F.c.scope, _F.c.kind).where(
    _F.c.scope.in_(bindparam("scopes", expanding=True)),
    _F.c.kind.in_(bindparam("kinds", expanding=True)))
_FIRSTS_INSERT = DriverInsert(_F, ("scope", "kind"))


def _upsert(dialect: Any) -> Insert:
    stmt = dialect.insert(_C)
    # Built once per dialect: ``excluded`` builds a column collection each time it is read.
    return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=["org_id", "app_id", "send_id", "platform", "hour", "metric"],
        set_={"value": _C.c.value + stmt.excluded.value},
    )


_UPSERT = {"postgresql": _upsert(postgresql), "sqlite": _upsert(sqlite)}


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
    """Record (scope, kind) pairs; return those that were new (first occurrences).

    On PostgreSQL one ``INSERT … ON CONFLICT DO NOTHING RETURNING``: concurrent workers may
    race for the same pair, and exactly one of them gets it back. On SQLite the write
    transaction holds the database's only write lock (``BEGIN IMMEDIATE``), so reading which
    pairs exist and inserting the others cannot race; it is done that way because SQLite can
    then run the insert as one prepared ``executemany`` (``DriverInsert``) instead of compiling
    a multi-row ``VALUES … RETURNING`` statement of a new length for every batch."""
    pairs = list(dict.fromkeys(scopes))
    if not pairs:
        return set()
    if conn.dialect.name == "postgresql":
        result = await conn.execute(_FIRSTS_PG, [{"scope": s, "kind": k} for s, k in pairs])
        return {(r.scope, r.kind) for r in result}
    existing: set[tuple[str, str]] = set()
    names = sorted({s for s, _ in pairs})
    kinds = sorted({k for _, k in pairs})  # a handful: with the scopes, one key lookup each
    for i in range(0, len(names), _CHUNK):
        existing.update((r.scope, r.kind) for r in await conn.execute(
            _FIRSTS_EXISTING, {"scopes": names[i:i + _CHUNK], "kinds": kinds}))
    new = [p for p in pairs if p not in existing]
    await _FIRSTS_INSERT.run(conn, new)
    return set(new)


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
    await conn.execute(_UPSERT[conn.dialect.name], rows)
    await rollups.add(conn, rows)  # the same sums per org / app / journey (fast reports)
