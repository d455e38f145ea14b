"""Registration callbacks: one signed POST per finished registration, tried once (as CIJ).

The body is ``{"Status", "Signature", "FailureReason"}``; ``Signature`` is
base64(HMAC-SHA256(key = the API token, message = the callback URL)), computed at accept time
so the API token itself is never stored. Before connecting, the host name is resolved and
refused if any address is private or loopback (unless ``CLARION_WEBHOOK_ALLOW_PRIVATE=1``),
so a callback cannot be aimed inside the operator's network by DNS tricks.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from clarion.domain.netguard import check_url, is_public_address
from clarion.errors import InvalidInput
from clarion.store.tasks import Task

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CallbackPost:
    url: str
    body: dict[str, Any]
    request_id: str
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> dict[str, Any]:
        return {"url": self.url, "headers": self.headers, "body": self.body,
                "request_id": self.request_id}

    @staticmethod
    def decode(payload: Mapping[str, Any]) -> CallbackPost:
        return CallbackPost(url=str(payload["url"]), body=dict(payload["body"]),
                            request_id=str(payload.get("request_id")),
                            headers=dict(payload.get("headers") or {}))


# Tried once, as CIJ does: a receiver that is down misses its callback (the status API stays).
REGISTRATION_CALLBACK: Task[CallbackPost] = Task(
    "registration.callback", CallbackPost.encode, CallbackPost.decode, max_attempts=1)


async def _resolves_public(host: str, port: int) -> bool:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return True  # unresolvable: httpx will fail the POST and we log it
    return all(is_public_address(str(info[4][0])) for info in infos)


class Callbacks:
    def __init__(self, http: httpx.AsyncClient, *, allow_private: bool) -> None:
        self._http = http
        self._allow_private = allow_private

    async def deliver(self, post: CallbackPost) -> bool:
        """POST the callback once; True when the receiver answered 2xx. Never raises."""
        url = post.url
        try:
            host = check_url(url, allow_private=self._allow_private)
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            if not self._allow_private and not await _resolves_public(host, port):
                log.warning("callback %s refused: %s resolves to a private address", url, host)
                return False
            response = await self._http.post(url, json=post.body, headers=post.headers)
        except (InvalidInput, httpx.HTTPError) as exc:
            log.warning("callback to %s for registration %s failed: %s", url, post.request_id,
                        exc)
            return False
        if response.status_code >= 300:
            log.warning("callback to %s for registration %s answered %d", url,
                        post.request_id, response.status_code)
            return False
        return True
