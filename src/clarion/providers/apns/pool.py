"""Several HTTP/2 connections to one APNs host for one set of credentials.

Apple recommends keeping connections open and using several of them for throughput
("Sending notification requests to APNs"). The pool opens up to ``size`` connections lazily,
hands out the one with the most free streams (spreading load), replaces connections that
closed or received GOAWAY, and makes callers wait, without polling, when every stream is busy.

A connection failure fails fast: callers waiting when a connect attempt fails get that error,
and for one second afterwards new callers get it at once instead of each trying again (a dead
or black-holed host must not cost one timeout per notification).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Callable

from clarion.providers.apns.client import ApnsConnection
from clarion.providers.apns.transport import TransportError, tls_error

_FAIL_FAST_SECONDS = 1.0


class ApnsPool:
    def __init__(self, *, host: str, port: int, ssl_context: ssl.SSLContext,
                 server_hostname: str, size: int, token_auth: bool, timeout: float,
                 ping_interval: float = 60.0) -> None:
        self.host = host
        self.port = port
        self._ssl = ssl_context
        self._server_hostname = server_hostname
        self._size = max(1, size)
        self._token_auth = token_auth
        self._timeout = timeout
        self._ping_interval = ping_interval
        self._conns: list[ApnsConnection] = []
        self._connecting = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._failures = 0
        self._last_error: TransportError | None = None
        self._failed_at = float("-inf")
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.opened = 0  # connections opened so far (for tests and metrics)

    @property
    def connections(self) -> list[ApnsConnection]:
        return list(self._conns)

    def rejected(self, auth: bytes, since: float) -> str | None:
        """The reason APNs gave, after ``since`` (loop time), for refusing this authorization
        value (a JWT; empty for certificate auth), if it did."""
        for conn in self._conns:
            if conn.rejected is not None and conn.rejected[0] == auth and \
                    conn.rejected[2] >= since:
                return conn.rejected[1]
        return None

    def try_acquire(self) -> ApnsConnection | None:
        """A connection with a free stream, or None. Synchronous: submit right away."""
        best: ApnsConnection | None = None
        best_free = 0
        for conn in self._conns:
            free = conn.capacity
            if free > best_free:
                best, best_free = conn, free
        return best

    async def acquire(self) -> ApnsConnection:
        loop = asyncio.get_running_loop()
        while True:
            conn = self.try_acquire()
            if conn is not None:
                return conn
            if self._closed:
                raise TransportError("ConnectionError", "the APNs sender is closed",
                                     retry_safe=True)
            usable = sum(1 for c in self._conns if c.usable)
            if usable + self._connecting < self._size:
                if self._last_error is not None and \
                        loop.time() - self._failed_at < _FAIL_FAST_SECONDS and not usable:
                    raise self._last_error
                self._start_connect()
            generation = self._failures
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            if self._failures != generation and self.try_acquire() is None \
                    and self._last_error is not None:
                raise self._last_error

    def _start_connect(self) -> None:
        self._connecting += 1
        task = asyncio.get_running_loop().create_task(self._connect())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self) -> None:
        try:
            conn = await open_connection(
                host=self.host, port=self.port, ssl_context=self._ssl,
                server_hostname=self._server_hostname, token_auth=self._token_auth,
                connect_timeout=self._timeout, request_timeout=self._timeout,
                on_change=self._changed,
                credential_auth=not self._token_auth, ping_interval=self._ping_interval)
        except Exception as exc:  # any failure must reach the waiters (no retry storm)
            error = exc if isinstance(exc, TransportError) else TransportError(
                "ConnectionError", f"could not open a connection to APNs ({exc!r})",
                retry_safe=True)
            self._failures += 1
            self._last_error = error
            self._failed_at = asyncio.get_running_loop().time()
            return
        finally:
            self._connecting -= 1
            self._wake()
        self.opened += 1
        self._last_error = None
        if self._closed:
            conn.close()
            return
        self._conns.append(conn)
        self._wake()

    def _changed(self, conn: ApnsConnection) -> None:
        if conn.closed:
            with contextlib.suppress(ValueError):
                self._conns.remove(conn)
        elif conn.goaway is not None and not conn.active:
            conn.close()
            return
        if self._waiters:
            self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    async def aclose(self) -> None:
        self._closed = True
        for conn in list(self._conns):
            conn.close()
        self._conns.clear()
        self._wake()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def open_connection(*, host: str, port: int, ssl_context: ssl.SSLContext,
                          server_hostname: str, token_auth: bool, connect_timeout: float,
                          request_timeout: float,
                          on_change: Callable[[ApnsConnection], None],
                          credential_auth: bool = False,
                          ping_interval: float = 60.0) -> ApnsConnection:
    """Connect, negotiate TLS + ALPN h2, and wait for the server's SETTINGS."""
    loop = asyncio.get_running_loop()

    def factory() -> ApnsConnection:
        return ApnsConnection(token_auth=token_auth, timeout=request_timeout,
                              on_change=on_change,
                              credential_auth=credential_auth, ping_interval=ping_interval)

    conn: ApnsConnection | None = None  # set once TCP+TLS are up
    try:
        async with asyncio.timeout(connect_timeout):
            _, conn = await loop.create_connection(
                factory, host, port, ssl=ssl_context, server_hostname=server_hostname)
            await conn.ready
    except TransportError as exc:
        if conn is not None:
            conn.abort(exc)
        exc.retry_safe = True  # nothing was sent on this connection yet
        raise
    except TimeoutError as exc:
        error = TransportError("Timeout", f"could not connect to APNs at {host}:{port} within "
                               f"{connect_timeout:g} s", retry_safe=True)
        if conn is not None:
            conn.abort(error)
        raise error from exc
    except (OSError, ssl.SSLError) as exc:
        error = tls_error(exc, credential_auth=credential_auth)
        error.retry_safe = True
        error.detail = f"{host}:{port}: {error.detail}"
        raise error from exc
    return conn
