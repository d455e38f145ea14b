"""How the emulators run: ``Emulator``, the start/stop and ``async with`` of every one, and
``HttpEmulator``, what the aiohttp ones (FCM, Web Push) share: serving their application and
keeping the JSON-lines log of the requests they answered."""

from __future__ import annotations

import asyncio
import json
import ssl
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, NoReturn, Self, TextIO

from aiohttp import web


class Emulator(ABC):
    """An emulator: ``await start()`` returns the port it serves on, ``await stop()`` ends
    it, and ``async with`` does both."""

    @abstractmethod
    async def start(self) -> int: ...

    @abstractmethod
    async def stop(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class HttpEmulator(Emulator):
    """Serves ``app()`` on ``host:port`` (port 0: any free port, read back once bound), over
    TLS with ``ssl_context``; with ``log_path``, each entry given to ``_write_log`` is
    appended to that file as a JSON line."""

    def __init__(self, *, host: str, port: int, ssl_context: ssl.SSLContext | None,
                 log_path: Path | None) -> None:
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.log_path = log_path
        self._runner: web.AppRunner | None = None
        self._log: TextIO | None = None

    @abstractmethod
    def app(self) -> web.Application:
        """The routes served."""

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"

    async def start(self) -> int:
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context,
                           reuse_address=True)
        await site.start()
        addresses = self._runner.addresses  # the bound port, when 0 was asked
        if addresses:
            self.port = int(addresses[0][1])
        if self.log_path is not None:
            self._log = self.log_path.open("a", encoding="utf-8")
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _write_log(self, entry: dict[str, Any]) -> None:
        """Append ``entry`` to the log file, if there is one."""
        if self._log is not None:
            self._log.write(json.dumps(entry, default=str) + "\n")
            self._log.flush()


def drop_connection(request: web.Request) -> NoReturn:
    """Abort the connection of ``request`` without an answer."""
    if request.transport is not None:
        request.transport.abort()
    raise asyncio.CancelledError  # nothing is answered on an aborted connection
