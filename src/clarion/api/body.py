"""Request bodies are bounded: one reading loop, one 413, for every route and both fast paths.

Every request body is read by counting the bytes ``receive()`` hands over; past the route's
limit the reading stops and the answer is ``413`` with the limit in the message — before the
body is parsed, and without holding more than the limit (plus one chunk) in memory. A
``Content-Length`` over the limit is refused before a byte is read. Three limits:

=============================  ==========================================================
``CLARION_EVENTS_MAX_BODY_BYTES``  interaction reports (credential-less, the hottest path)
``CLARION_MAX_BODY_BYTES``     every body read before anyone is authenticated (CIJ device
                               registration: the credentials are in the body)
``CLARION_ADMIN_MAX_BODY_BYTES``   bodies of admin-token requests, read only after the token
                               is checked (``clarion.api.intake``)
=============================  ==========================================================

The FastAPI routes read through ``bounded`` (``clarion.api.intake`` wraps every route); the two
raw-ASGI fast paths call ``read_body``. ``BodyTooLarge`` is an ``HTTPException`` so that
FastAPI's body parsing lets it through unchanged; ``clarion.api.errors`` answers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive

from clarion.config import Settings


@dataclass(frozen=True, slots=True)
class Bound:
    """Which limit applies, and what to tell a client that went over it."""

    setting: str  # the Settings field
    fix: str

    @property
    def variable(self) -> str:
        return f"CLARION_{self.setting.upper()}"

    def limit(self, settings: Settings) -> int:
        value: int = getattr(settings, self.setting)
        return value


EVENTS = Bound("events_max_body_bytes",
               "Send one interaction report per request, or at most 100 in a batch.")
UNAUTHENTICATED = Bound("max_body_bytes",
                        "Send at most 100 registrations per batch, with the tokens as the "
                        "platforms issued them.")
ADMIN = Bound("admin_max_body_bytes",
              "Send a smaller body: split a large audience into several sends.")


class BodyTooLarge(HTTPException):
    """The body went over its limit (raised while reading, or on its Content-Length)."""

    def __init__(self, limit: int, bound: Bound) -> None:
        super().__init__(413, f"the request body is larger than {limit:,} bytes")
        self.limit = limit
        self.bound = bound

    def error(self) -> dict[str, Any]:
        return {"code": "payload_too_large",
                "message": f"the request body is larger than the limit of {self.limit:,} bytes",
                "fix": f"{self.bound.fix} (The operator sets the limit with "
                       f"{self.bound.variable}.)"}

    def answer(self) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The 413 as the fast paths send it: (status, headers, body)."""
        content = orjson.dumps({"error": self.error()})
        return 413, [(b"content-type", b"application/json"),
                     (b"content-length", str(len(content)).encode())], content


def declared_over(content_length: bytes | str | None, limit: int) -> bool:
    """Whether a Content-Length header announces more than ``limit`` bytes. A malformed one
    is left to the counting (servers refuse those before Clarion sees them anyway)."""
    if content_length is None or not content_length.isdigit():
        return False
    return int(content_length) > limit


async def read_body(receive: Receive, content_length: bytes | str | None, limit: int,
                    bound: Bound) -> bytes:
    """The whole body, or BodyTooLarge as soon as it is longer than ``limit``;
    ClientDisconnect if the client leaves first."""
    if declared_over(content_length, limit):
        raise BodyTooLarge(limit, bound)
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body", False):
        whole: bytes = message.get("body", b"")  # the usual case: one message, no list, no join
        if len(whole) > limit:
            raise BodyTooLarge(limit, bound)
        return whole
    chunks: list[bytes] = []
    size = 0
    while True:
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit, bound)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
        message = await receive()


def bounded(receive: Receive, limit: int, bound: Bound) -> Receive:
    """``receive`` that raises BodyTooLarge once more than ``limit`` body bytes went by."""
    size = 0

    async def receive_bounded() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise BodyTooLarge(limit, bound)
        return message

    return receive_bounded
