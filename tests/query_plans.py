"""Query plans in tests: the statements a block runs, and which of them read a whole table.

SQLite's plan names a scan outright (``SCAN people``), including a search on a column that is
not the leading one of any index. PostgreSQL's is checked with sequential scans disabled, so a
``Seq Scan`` (or an index scan with no condition) means no index could serve; a condition on a
non-leading index column still counts as a search there, so SQLite is the stricter check."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from clarion.bootstrap import Container


@contextmanager
def listening(c: Container, after: Callable[..., None]) -> Iterator[None]:
    """``after`` called with every statement of both engines (SQLAlchemy's
    ``after_cursor_execute``) while the block runs."""
    engines = {id(e): e.sync_engine for e in (c.db.read_engine, c.db.write_engine)}
    for engine in engines.values():
        event.listen(engine, "after_cursor_execute", after)
    try:
        yield
    finally:
        for engine in engines.values():
            event.remove(engine, "after_cursor_execute", after)


@contextmanager
def statements(c: Container) -> Iterator[list[tuple[str, Any]]]:
    """Every statement run while the block runs, with its parameters (one-row forms only:
    a bulk insert's plan is the table's, not a search)."""
    seen: list[tuple[str, Any]] = []

    def after(_conn: Any, _cursor: Any, stmt: str, params: Any, _ctx: Any,
              many: bool) -> None:
        if not many:
            seen.append((stmt, params))

    with listening(c, after):
        yield seen


def _pg_scans(node: dict[str, Any]) -> list[str]:
    """The nodes of a PostgreSQL JSON plan that read a table or an index whole."""
    found = []
    kind = node.get("Node Type", "")
    if "Relation Name" in node and (kind == "Seq Scan" or (
            kind in ("Index Scan", "Index Only Scan") and "Index Cond" not in node)):
        found.append(f"{kind} on {node['Relation Name']}")
    for child in node.get("Plans", ()):
        found += _pg_scans(child)
    return found


async def full_scans(c: Container, run: list[tuple[str, Any]]) -> list[str]:
    """The statements of ``run`` whose plan reads a whole table (or a whole index)."""
    found: list[str] = []
    postgres = c.db.dialect == "postgresql"
    async with c.db.write_engine.connect() as conn:
        if postgres:  # a sequential scan then only where no index can serve
            await conn.exec_driver_sql("SET enable_seqscan = off")
        for stmt, params in run:
            if not stmt.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "WITH")):
                continue
            if postgres:
                plan = (await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + stmt,
                                                   params)).scalar_one()
                plan = json.loads(plan) if isinstance(plan, str) else plan
                scans = _pg_scans(plan[0]["Plan"])
            else:
                scans = [str(r[-1]) for r in await conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + stmt, params)
                    if str(r[-1]).startswith("SCAN") and " VIRTUAL TABLE" not in str(r[-1])]
            if scans:
                found.append(f"{scans}: {' '.join(stmt.split())[:200]}")
        await conn.rollback()
    return found
