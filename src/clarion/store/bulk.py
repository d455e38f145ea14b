"""Driver-level ``executemany`` for the hottest inserts.

``conn.execute(insert(table), rows)`` costs SQLAlchemy several microseconds per row before the
driver sees it: each row's dict is walked against the compiled statement, every value goes
through its type's bind processor, and on SQLite an ``INSERT … RETURNING`` of many rows becomes
one multi-``VALUES`` statement whose text changes with the row count, so SQLite compiles it
anew every time. On the interaction ingest path (≥ 10,000 reports/s on one core, several rows
per report) that was more than a third of the CPU per report.

``DriverInsert`` compiles the single-row ``INSERT`` of a fixed column list once per dialect,
keeps the bind processors of the columns that have one (on SQLite: datetimes to text, booleans
to integers; on PostgreSQL usually none), and runs the rows as tuples through
``AsyncConnection.exec_driver_sql``: one driver ``executemany`` (one hop to aiosqlite's thread,
one pipelined ``executemany`` on asyncpg) of one prepared statement that the driver caches.
It is still SQLAlchemy's connection, transaction and statement text: only the per-row work in
Python is skipped. SQLAlchemy offers no public "executemany these tuples" for a Core
statement, hence this small module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

_Processor = Callable[[Any], Any] | None


class DriverInsert:
    """``INSERT INTO table (columns…)`` for many rows given as tuples in ``columns`` order."""

    def __init__(self, table: Table, columns: Sequence[str]) -> None:
        unknown = [c for c in columns if c not in table.c]
        if unknown:
            raise ValueError(f"{table.name} has no column(s) {unknown}")
        self.table = table
        self.columns = tuple(columns)
        self._compiled: dict[str, tuple[str, tuple[int, ...], tuple[_Processor, ...]]] = {}

    def _for(self, dialect: Dialect) -> tuple[str, tuple[int, ...], tuple[_Processor, ...]]:
        got = self._compiled.get(dialect.name)
        if got is None:
            compiled = insert(self.table).compile(dialect=dialect, column_keys=list(self.columns))
            names = compiled.positiontup
            if names is None:  # pragma: no cover - both supported drivers are positional
                raise RuntimeError(f"{dialect.name}: DriverInsert needs a positional paramstyle")
            order = tuple(self.columns.index(name) for name in names)
            processors = tuple(
                self.table.c[self.columns[i]].type.dialect_impl(dialect).bind_processor(dialect)
                for i in order)
            got = (str(compiled), order, processors)
            self._compiled[dialect.name] = got
        return got

    async def run(self, conn: AsyncConnection, rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` (each a tuple in ``columns`` order) inside ``conn``'s transaction."""
        if not rows:
            return
        sql, order, processors = self._for(conn.dialect)
        if order == tuple(range(len(order))) and not any(processors):
            params: list[tuple[Any, ...]] = [tuple(r) for r in rows]
        else:
            plan = tuple(zip(order, processors, strict=True))
            params = [tuple(row[i] if p is None or row[i] is None else p(row[i])
                            for i, p in plan) for row in rows]
        await conn.exec_driver_sql(sql, params)
