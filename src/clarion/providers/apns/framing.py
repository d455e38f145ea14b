"""The ``jh2`` (``h2``'s fork) pieces of an APNs connection: configuration, per-stream state,
and an ``H2Connection`` that does not scan every stream to count the open ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from jh2.config import H2Configuration
from jh2.connection import H2Connection

from clarion.providers.apns.transport import Response


class StreamState:
    __slots__ = ("auth", "blocked", "body", "deadline", "future", "headers", "written")

    def __init__(self, future: asyncio.Future[Response], deadline: float, auth: bytes) -> None:
        self.future = future
        self.deadline = deadline
        self.auth = auth
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.blocked = b""  # request body bytes waiting for flow-control window
        self.written = False


class CountingH2(H2Connection):  # type: ignore[misc]  # jh2 ships no type information
    """``h2`` counts open streams by scanning every stream for each new one (O(n): a quarter of
    the client's CPU with hundreds of streams in flight). The connection knows its count; the
    scan, which also forgets closed streams, still runs once every 256 new streams (up to 256
    finished streams are kept meanwhile; a scan per 64 cost ~17 stream checks per request)."""

    def __init__(self, config: H2Configuration, open_count: Callable[[], int]) -> None:
        super().__init__(config=config)
        self._open_count = open_count
        self._new_streams = 0

    @property
    def open_outbound_streams(self) -> int:
        self._new_streams += 1
        if self._new_streams % 256 == 0:
            return int(self._open_streams(1))
        return self._open_count()


def client_config() -> H2Configuration:
    # Outbound headers are built by payload.py (lowercase, well-formed): validating and
    # normalising them again costs ~15% of the hot path. Answers are only read for
    # ``:status``, ``apns-id`` and ``retry-after`` (streams.py, which copes with any value):
    # checking every answer's header block against RFC 9113 §8.2 cost another ~10%.
    return H2Configuration(client_side=True, header_encoding=None,
                           validate_outbound_headers=False, normalize_outbound_headers=False,
                           validate_inbound_headers=False, normalize_inbound_headers=False)
