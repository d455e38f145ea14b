"""What the APNs emulator keeps about each request and about its connections."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Received:
    """One request as the emulator saw it, and what it answered."""

    time: float
    connection: int
    stream_id: int
    method: str
    path: str
    token: str | None
    headers: dict[str, str]
    auth: str | None  # "token" | "certificate" | None
    jwt: dict[str, Any] | None
    payload: Any
    payload_bytes: int
    status: int | None  # None: dropped without an answer
    reason: str | None
    apns_id: str | None

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class Stats:
    connections: int = 0
    requests: int = 0
    goaways: int = 0
    drops: int = 0
    refused: int = 0  # streams over the advertised limit, reset with REFUSED_STREAM
    max_concurrent: int = 0  # most streams open at once on one connection
