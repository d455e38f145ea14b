"""Registration callbacks: one signed POST per finished registration, tried once (as CIJ).

The body is ``{"Status", "Signature", "FailureReason"}``; ``Signature`` is
base64(HMAC-SHA256(key = the API token, message = the callback URL)), computed at accept time
so the API token itself is never stored.

The POST goes through ``clarion.providers.outbound`` under the callback policy: the host name
is resolved once, refused if any address is private, loopback or otherwise not public (unless
``CLARION_WEBHOOK_ALLOW_PRIVATE=1``), and the connection goes to the checked address, so a
callback cannot be aimed inside the operator's network by DNS tricks; redirects are not
followed (a 3xx is a failure).

A callback fails alone: ``deliver_callback`` never raises, whatever goes wrong (a refused
address, a closed port, a header aiohttp will not send, stored data of the wrong shape), so a
batch of callback jobs is always completed and none is dead-lettered: an operator's
``clarion jobs retry`` could otherwise send the ones already delivered a second time. Logs name
a callback by its origin (``scheme://host:port``), never its path or query, which may carry a
secret.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson

from clarion.domain.netguard import url_origin
from clarion.providers.outbound import AddressRefused, OutboundClient, Unreachable

log = logging.getLogger(__name__)

# Headers a callback may not set: they frame the request or the connection (RFC 9110 §7.6.1,
# RFC 9112 §6-§9) or name the target, and are Clarion's to write. Registration refuses them
# (400); a job stored before that rule fails here instead of being sent.
_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection",
                      "keep-alive", "proxy-connection", "proxy-authorization",
                      "proxy-authenticate", "te", "trailer", "upgrade"})


class CallbackRefused(Exception):
    """A callback job Clarion will not send as stored (said in Clarion's words)."""


def _request(payload: Mapping[str, Any]) -> tuple[str, bytes, dict[str, str]]:
    """(url, JSON body, headers) of a callback job, or CallbackRefused saying what is wrong."""
    url = payload.get("url")
    if not isinstance(url, str) or not url:
        raise CallbackRefused("the job names no callback URL")
    raw_headers = payload.get("headers") or {}
    if not isinstance(raw_headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in raw_headers.items()):
        raise CallbackRefused("the stored callback headers are not an object of strings")
    framing = sorted(k for k in raw_headers if k.lower() in _FRAMING)
    if framing:
        raise CallbackRefused(f"the callback header {framing[0]} may not be set by a client")
    body = payload.get("body")
    if not isinstance(body, Mapping):
        raise CallbackRefused("the job has no callback body")
    headers = {**raw_headers, "Content-Type": "application/json"}
    return url, orjson.dumps(body), headers


async def deliver_callback(*, client: OutboundClient, payload: Mapping[str, Any]) -> bool:
    """POST the callback once; True when the receiver answered 2xx. Never raises."""
    origin = url_origin(str(payload.get("url")))
    request_id = payload.get("request_id")
    try:
        url, body, headers = _request(payload)
        answer = await client.post(url, data=body, headers=headers, read_limit=4096)
    except (CallbackRefused, AddressRefused) as exc:
        log.warning("callback to %s for registration %s refused: %s", origin, request_id, exc)
        return False
    except Unreachable as exc:
        log.warning("callback to %s for registration %s failed (%s): %s", origin, request_id,
                    exc.reason, exc.message)
        return False
    except Exception as exc:  # anything else (a header aiohttp will not send...): alone
        log.warning("callback to %s for registration %s failed: %s", origin, request_id,
                    type(exc).__name__)
        return False
    if 300 <= answer.status < 400:
        log.warning("callback to %s for registration %s answered %d, a redirect, which Clarion "
                    "does not follow", origin, request_id, answer.status)
        return False
    if answer.status >= 300 or answer.status < 200:
        log.warning("callback to %s for registration %s answered %d", origin, request_id,
                    answer.status)
        return False
    log.debug("callback to %s for registration %s delivered (%d)", origin, request_id,
             answer.status)
    return True
