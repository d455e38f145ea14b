"""Driver-level ``executemany`` for the hottest statements.

``conn.execute(stmt, rows)`` costs SQLAlchemy several microseconds per row before the driver
sees it: each row's dict is walked against the compiled statement and every value goes through
its type's bind processor; and on SQLite an ``INSERT … RETURNING`` of many rows becomes one
multi-``VALUES`` statement whose text changes with the row count, so SQLite compiles it anew
every time. On the interaction and delivery paths (thousands of rows per second on one core,
several per report or notification) that was a large share of the CPU.

``DriverMany`` compiles a Core statement once per dialect, keeps the bind processors of the
parameters that have one (on SQLite: datetimes to text, booleans to integers; on PostgreSQL
usually none), and runs the rows as tuples through ``AsyncConnection.exec_driver_sql``: one
driver ``executemany`` (one hop to aiosqlite's thread, one pipelined ``executemany`` on
asyncpg) of one prepared statement that the driver caches. It is still SQLAlchemy's
connection, transaction and statement text: only the per-row work in Python is skipped.
Python-side column defaults are not applied: name every column the rows need. SQLAlchemy has
no public "executemany these tuples" for a Core statement, hence this small module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

_Processor = Callable[[Any], Any] | None
# Where each positional parameter comes from: (index in the caller's row, or -1 for a value
# fixed in the statement, that value, its bind processor).
_Plan = tuple[tuple[int, Any, _Processor], ...]


class DriverMany:
    """``build(dialect)`` executed for many rows, each a tuple of the values of ``names``.

    ``names`` are the statement's bind parameter names (for a plain ``INSERT``, the column
    names: pass them as ``column_keys`` too). Values bound in the statement itself (``state ==
    'pending'``) are kept as compiled."""

    def __init__(self, build: Callable[[Dialect], ClauseElement], names: Sequence[str], *,
                 column_keys: Sequence[str] | None = None) -> None:
        self._build = build
        self.names = tuple(names)
        self._column_keys = list(column_keys) if column_keys is not None else None
        self._compiled: dict[str, tuple[str, _Plan, bool]] = {}

    def _for(self, dialect: Dialect) -> tuple[str, _Plan, bool]:
        got = self._compiled.get(dialect.name)
        if got is None:
            compiled = cast(SQLCompiler, self._build(dialect).compile(
                dialect=dialect, column_keys=self._column_keys))
            order = compiled.positiontup
            if order is None:  # pragma: no cover - both supported drivers are positional
                raise RuntimeError(f"{dialect.name}: DriverMany needs a positional paramstyle")
            plan: list[tuple[int, Any, _Processor]] = []
            for name in order:
                bind = compiled.binds[name]
                processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
                if name in self.names:
                    plan.append((self.names.index(name), None, processor))
                else:
                    value = bind.effective_value
                    plan.append((-1, processor(value) if processor else value, None))
            straight = all(p is None for _, _, p in plan) and [i for i, _, _ in plan] == list(
                range(len(self.names)))
            got = (str(compiled), tuple(plan), straight)
            self._compiled[dialect.name] = got
        return got

    async def run(self, conn: AsyncConnection, rows: Sequence[Sequence[Any]]) -> int:
        """Execute for ``rows`` (tuples in ``names`` order) inside ``conn``'s transaction.
        Returns the rows changed as the driver counts them: exact on SQLite (the sum over
        all rows), -1 on asyncpg, which does not count an ``executemany``."""
        if not rows:
            return 0
        sql, plan, straight = self._for(conn.dialect)
        if straight:
            params: list[tuple[Any, ...]] = [tuple(r) for r in rows]
        else:
            # Built column by column (C-level zip/map, no Python loop per value). Rows of one
            # batch usually share their timestamps (one ``now``): each processor (a pure
            # function) remembers its last input, compared by identity.
            columns = list(zip(*rows, strict=True))
            params = list(zip(*(
                repeat(fixed, len(rows)) if i < 0 else columns[i] if p is None
                else map(_Memo(p), columns[i]) for i, fixed, p in plan), strict=True))
        result = await conn.exec_driver_sql(sql, params)
        return int(result.rowcount)


class _Memo:
    __slots__ = ("_fn", "_last_in", "_last_out")

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self._fn = fn
        self._last_in: Any = _Memo  # nothing seen yet (no value is this class)
        self._last_out: Any = None

    def __call__(self, value: Any) -> Any:
        if value is None:
            return None
        if value is not self._last_in:
            self._last_in, self._last_out = value, self._fn(value)
        return self._last_out


class DriverInsert(DriverMany):
    """``INSERT INTO table (columns…)`` for many rows given as tuples in ``columns`` order."""

    def __init__(self, table: Table, columns: Sequence[str]) -> None:
        unknown = [c for c in columns if c not in table.c]
        if unknown:
            raise ValueError(f"{table.name} has no column(s) {unknown}")
        super().__init__(lambda _dialect: insert(table), columns, column_keys=columns)
        self.table = table
        self.columns = tuple(columns)
