"""Waking idle workers when jobs arrive: in-process after commit, across processes by NOTIFY.

SQLite has one writer, so every enqueue that matters happens in this process: the queue calls
``wake()`` once the enqueuing transaction commits. PostgreSQL is shared by many processes on
many machines: enqueuers run ``pg_notify('clarion_jobs', kind)`` in their transaction (the
server delivers it only at commit) and each process keeps one ``LISTEN`` connection here.

Hand-written on asyncpg because SQLAlchemy has no notification API. The connection is kept
alive for the queue's lifetime: it is pinged when quiet, reopened with jittered backoff when
lost, and workers fall back to polling meanwhile (nothing is lost, only later).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from clarion.domain.backoff import backoff_seconds

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "clarion_jobs"
_PING_SECONDS = 30.0
# SQLAlchemy-only URL options that asyncpg.connect() would send as server settings.
_SQLALCHEMY_ONLY_QUERY = ("prepared_statement_cache_size", "prepared_statement_name_func")


def listen_dsn(sqlalchemy_url: str) -> str:
    """The asyncpg DSN for a ``postgresql+asyncpg://`` SQLAlchemy URL."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    url = url.difference_update_query(_SQLALCHEMY_ONLY_QUERY)
    return url.render_as_string(hide_password=False)


class Wakeup:
    """One wake-up flag for every waiter of a queue, optionally fed by PostgreSQL LISTEN."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._event.set()

    async def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``; return early if woken (or woken since the last wait)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._event.wait()
            self._event.clear()

    async def listen(self, sqlalchemy_url: str) -> None:
        """Start listening; returns after the first attempt to connect (retried if it failed)."""
        if self._task is not None:
            return
        ready = asyncio.Event()
        self._task = asyncio.create_task(
            self._listen(listen_dsn(sqlalchemy_url), ready), name="clarion-jobs-listen"
        )
        await ready.wait()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _on_notify(self, *_args: object) -> None:
        self._event.set()

    async def _listen(self, dsn: str, ready: asyncio.Event) -> None:
        failures = 0
        first = True
        while True:
            conn: Any = None
            try:
                conn = await asyncpg.connect(dsn)
                lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                conn.add_termination_listener(_resolver(lost))
                await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                if failures or not first:
                    self._event.set()  # notifications sent while we were away: look now
                failures, first = 0, False
                ready.set()
                await _until_lost(conn, lost)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                delay = backoff_seconds(failures, base=0.5, cap=30.0)
                log.warning(
                    "job notifications unavailable (%s: %s); workers poll meanwhile, "
                    "reconnecting in %.1f s", type(exc).__name__, exc, delay,
                )
                ready.set()
                await asyncio.sleep(delay)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 5)


def _resolver(fut: asyncio.Future[None]) -> Any:
    def _done(_conn: object) -> None:
        if not fut.done():
            fut.set_result(None)

    return _done


async def _until_lost(conn: Any, lost: asyncio.Future[None]) -> None:
    """Return never; raise once the connection is closed or stops answering pings."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(lost), _PING_SECONDS)
        if lost.done():
            raise ConnectionError("the LISTEN connection was closed")
        await asyncio.wait_for(conn.fetchval("SELECT 1"), _PING_SECONDS)
