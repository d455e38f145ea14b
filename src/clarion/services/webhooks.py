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
from typing import Any
from urllib.parse import urlsplit

import httpx

from clarion.domain.netguard import check_url, is_public_address
from clarion.errors import InvalidInput

log = logging.getLogger(__name__)


async def _resolves_public(host: str, port: int) -> bool:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return True  # unresolvable: httpx will fail the POST and we log it
    return all(is_public_address(str(info[4][0])) for info in infos)


async def deliver_callback(
    *, http: httpx.AsyncClient, allow_private: bool, payload: Mapping[str, Any]
) -> bool:
    """POST the callback once; True when the receiver answered 2xx. Never raises."""
    url = str(payload["url"])
    try:
        host = check_url(url, allow_private=allow_private)
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if not allow_private and not await _resolves_public(host, port):
            log.warning("callback %s refused: %s resolves to a private address", url, host)
            return False
        response = await http.post(url, json=payload["body"],
                                   headers=dict(payload.get("headers") or {}))
    except (InvalidInput, httpx.HTTPError) as exc:
        log.warning("callback to %s for registration %s failed: %s", url,
                    payload.get("request_id"), exc)
        return False
    if response.status_code >= 300:
        log.warning("callback to %s for registration %s answered %d", url,
                    payload.get("request_id"), response.status_code)
        return False
    return True
