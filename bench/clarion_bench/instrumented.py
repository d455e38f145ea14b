"""``clarion`` with every SQL statement counted and timed (``bench/run.py --sql-stats``).

Runs the real CLI (``python -m clarion_bench.instrumented serve …``) after wrapping
``clarion.cli.main.build`` so the engines it creates get SQLAlchemy ``before/after_cursor_execute``
listeners. On exit the statistics go to the JSON file named by ``BENCH_SQL_STATS``: per
statement (first 160 characters, whitespace folded) how many times it ran, how many rows it
was given (executemany), and the wall time between the two events. With async drivers that
time includes waiting for the driver's thread and for the event loop, so under a saturated CPU
it overstates the database's own share; the counts are exact.
"""

from __future__ import annotations

import atexit
import json
import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event

import clarion.cli.main as cli_main

try:  # where `clarion serve` builds its container (clarion.runtime since the restructuring)
    import clarion.runtime as assembly
except ImportError:  # an older checkout (A/B runs): the CLI built it
    assembly = cli_main  # type: ignore[assignment]

_stats: dict[str, list[float]] = {}  # statement -> [executions, rows, seconds]
_original_build = assembly.build


def _key(statement: str) -> str:
    return " ".join(statement.split())[:160]


def _instrument(engine: Any) -> None:
    sync = engine.sync_engine

    @event.listens_for(sync, "before_cursor_execute")
    def _before(conn: Any, _cursor: Any, _stmt: str, _params: Any, _ctx: Any,
                _many: bool) -> None:
        conn.info["bench_t0"] = time.perf_counter()

    @event.listens_for(sync, "after_cursor_execute")
    def _after(conn: Any, _cursor: Any, stmt: str, params: Any, _ctx: Any,
               many: bool) -> None:
        took = time.perf_counter() - conn.info.pop("bench_t0", time.perf_counter())
        entry = _stats.setdefault(_key(stmt), [0, 0, 0.0])
        entry[0] += 1
        entry[1] += len(params) if many and isinstance(params, list | tuple) else 1
        entry[2] += took


def _build(*args: Any, **kwargs: Any) -> Any:
    container = _original_build(*args, **kwargs)
    engines = {id(e): e for e in (container.db.write_engine, container.db.read_engine)}
    for engine in engines.values():
        _instrument(engine)
    return container


def _dump() -> None:
    target = os.environ.get("BENCH_SQL_STATS")
    if not target:
        return
    ordered = sorted(_stats.items(), key=lambda kv: -kv[1][2])
    rows = [{"statement": k, "executions": int(v[0]), "rows": int(v[1]),
             "seconds": round(v[2], 4)} for k, v in ordered]
    Path(target).write_text(json.dumps(rows, indent=1), encoding="utf-8")


assembly.build = _build
atexit.register(_dump)

if __name__ == "__main__":
    cli_main.main()
