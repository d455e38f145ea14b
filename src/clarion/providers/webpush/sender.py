"""The Web Push sender: one encrypted ``POST <endpoint>`` per subscription (RFC 8030 §5).

Each send: build the CIJ JSON payload, refuse it when the encrypted body would pass the 4096
bytes push services guarantee, encrypt it (RFC 8291, fresh key and salt), and POST it with
``TTL``, ``Urgency``, ``Topic``, ``Content-Encoding: aes128gcm`` and the VAPID ``Authorization``
(RFC 8292; one cached header per push service origin and app key). The answer becomes exactly
one ``Outcome`` (``errors.classify``); a connection failure or time-out becomes RETRY_LATER
with reason ``ConnectionError``/``Timeout``/``TLSError``, never an exception.

HTTP/1.1 via aiohttp with one pooled connector for every app (connections are per push
service host; ``settings.webpush_connections`` per host) and a matching per-origin gate so that
no request waits for a pooled connection inside its own time-out. TLS trusts the system store
plus ``CLARION_CA_FILE`` (``client_ssl_context``).

SSRF: endpoints are URLs that browsers (so API callers) choose. Every POST goes through
``providers.outbound`` under the Web Push policy: the endpoint's name is resolved once, refused
if any address is not public, and the connection goes to the checked address; literal hosts in
any notation are checked before the request; redirects are not followed. A refused endpoint is
REJECTED ``AddressRefused`` (nothing sent) unless the operator allows private endpoints
(``CLARION_WEBPUSH_ALLOW_PRIVATE``, e.g. for the emulator).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from yarl import URL

from clarion.clock import Clock, SystemClock
from clarion.domain.netguard import OutboundPolicy
from clarion.domain.outcomes import DeviceSend, Outcome, OutcomeKind
from clarion.providers.base import ProviderSettings
from clarion.providers.outbound import AddressRefused, OutboundClient, Unreachable
from clarion.providers.webpush import payload as wp_payload
from clarion.providers.webpush.crypto import InvalidSubscription, encrypt, parse_subscription_keys
from clarion.providers.webpush.errors import classify, connection_failure
from clarion.providers.webpush.vapid import InvalidVapidKey, VapidHeaders, VapidKey, audience
from clarion.providers.webpush.vapid import load_vapid_key as _load_vapid_key

log = logging.getLogger(__name__)

_ERROR_BODY_LIMIT = 65_536
_KEY_CACHE_LIMIT = 1024
WEBPUSH_ALLOW_PRIVATE = "CLARION_WEBPUSH_ALLOW_PRIVATE"
_CREDENTIALS_FIX = ("Set the app's Web Push credentials again (vapid_subject and the VAPID key "
                    "pair; omit the private key to have one generated).")


class WebPushSender:
    """Sends Web Push messages for every app of the installation (``Sender`` port)."""

    def __init__(self, settings: ProviderSettings, *, clock: Clock | None = None) -> None:
        self._settings = settings
        self._clock = clock or SystemClock()
        self._vapid = VapidHeaders(clock=self._clock)
        self._keys: dict[tuple[str, str | None], VapidKey] = {}
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._client = OutboundClient(
            webpush_policy(settings), settings, limit_per_host=settings.webpush_connections,
            dns_cache_seconds=300, keepalive_seconds=60, auto_decompress=False)

    @property
    def vapid_signatures(self) -> int:
        """How many VAPID JWTs were signed (the rest came from the cache)."""
        return self._vapid.signed

    async def send(self, credentials: Mapping[str, Any], batch: Sequence[DeviceSend]
                   ) -> list[Outcome]:
        if not batch:
            return []
        try:
            key, subject = self._credentials(credentials)
        except InvalidVapidKey as exc:
            return [Outcome(item.delivery_id, OutcomeKind.CREDENTIAL_ERROR,
                            reason="InvalidVapidKey", detail=f"{exc}. {_CREDENTIALS_FIX}")
                    for item in batch]
        return list(await asyncio.gather(
            *(self._send_one(key, subject, item) for item in batch)))

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- internals -----------------------------------------------------------------------

    def _credentials(self, credentials: Mapping[str, Any]) -> tuple[VapidKey, str]:
        subject = credentials.get("vapid_subject")
        private = credentials.get("vapid_private_key")
        public = credentials.get("vapid_public_key")
        if not isinstance(subject, str) or not subject.startswith(("mailto:", "https:")):
            raise InvalidVapidKey("the app has no vapid_subject (a mailto: or https: contact "
                                  "that RFC 8292 §2.1 asks for and Apple and Mozilla require)")
        if not isinstance(private, str) or not private.strip():
            raise InvalidVapidKey("the app has no VAPID private key")
        if public is not None and not isinstance(public, str):
            raise InvalidVapidKey("the app's VAPID public key is not a string")
        cache_key = (private, public)
        key = self._keys.get(cache_key)
        if key is None:
            key = _load_vapid_key(private, public=public)
            if len(self._keys) >= _KEY_CACHE_LIMIT:
                self._keys.clear()
            self._keys[cache_key] = key
        return key, subject

    def _gate(self, origin: str) -> asyncio.Semaphore:
        gate = self._gates.get(origin)
        if gate is None:
            gate = self._gates[origin] = asyncio.Semaphore(self._settings.webpush_connections)
        return gate

    async def _send_one(self, key: VapidKey, subject: str, item: DeviceSend) -> Outcome:
        try:
            return await self._attempt(key, subject, item)
        except AddressRefused as exc:
            return _refused(item.delivery_id, exc)
        except Exception as exc:  # a bug must not lose the other sends of the batch
            log.exception("web push send %s failed unexpectedly", item.delivery_id)
            return Outcome(item.delivery_id, OutcomeKind.RETRY_LATER, reason="InternalError",
                           detail=f"Clarion failed while sending ({type(exc).__name__}).")

    async def _attempt(self, key: VapidKey, subject: str, item: DeviceSend) -> Outcome:
        endpoint = item.device.token
        origin = _endpoint_origin(endpoint)
        if origin is None:
            return Outcome(item.delivery_id, OutcomeKind.INVALID_TOKEN, reason="InvalidEndpoint",
                           detail=f"the subscription endpoint {endpoint[:200]!r} is not an "
                                  "http(s) URL; the browser must subscribe again.")
        target = self._client.check(endpoint)  # literal hosts; names when resolved
        try:
            keys = parse_subscription_keys(item.device.web_keys)
        except InvalidSubscription as exc:
            return Outcome(item.delivery_id, OutcomeKind.INVALID_TOKEN,
                           reason="InvalidSubscriptionKeys",
                           detail=f"{exc}, so no message can be encrypted for it; the browser "
                                  "must subscribe again (PushSubscription.toJSON() gives both).")
        note = item.notification
        plaintext = wp_payload.build_payload(note, dry_run=item.dry_run)
        over = wp_payload.bytes_over_limit(plaintext)
        if over:
            size = wp_payload.encrypted_size(len(plaintext))
            return Outcome(item.delivery_id, OutcomeKind.REJECTED, reason="PayloadTooLarge",
                           detail=f"the encrypted Web Push message would be {size} bytes, "
                                  f"{over} over the {wp_payload.MAX_ENCRYPTED_BYTES} bytes push "
                                  f"services guarantee; shorten the title, body or custom data "
                                  f"by at least {over} bytes.")
        headers = {
            "TTL": wp_payload.ttl_header(note, dry_run=item.dry_run),
            "Urgency": "normal" if item.dry_run else wp_payload.urgency_header(note),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Authorization": self._vapid.header(aud=origin, key=key, subject=subject),
        }
        topic = None if item.dry_run else wp_payload.topic_header(note.collapse_key)
        if topic:
            headers["Topic"] = topic
        body = encrypt(plaintext, keys)
        async with self._gate(origin):
            return await self._post(target, body, headers, item.delivery_id)

    async def _post(self, target: URL, body: bytes, headers: dict[str, str],
                    delivery_id: str) -> Outcome:
        try:
            # the (usually empty) body is read so the connection goes back to the pool
            answer = await self._client.post(target, data=body, headers=headers,
                                             read_limit=_ERROR_BODY_LIMIT)
        except Unreachable as exc:
            return connection_failure(delivery_id, exc.reason, exc.message)
        text = "" if answer.status in (200, 201, 202) else answer.body.decode("utf-8", "replace")
        return classify(delivery_id, answer.status, body=text, headers=answer.headers,
                        now=self._clock.now())


def webpush_policy(settings: ProviderSettings) -> OutboundPolicy:
    """Endpoints are tenant-chosen: public addresses only, unless the operator opts out."""
    return OutboundPolicy(what="Web Push endpoint", setting=WEBPUSH_ALLOW_PRIVATE,
                          allow_private=settings.webpush_allow_private,
                          is_public=settings.network.is_public)


def _refused(delivery_id: str, exc: AddressRefused) -> Outcome:
    return Outcome(delivery_id, OutcomeKind.REJECTED, reason="AddressRefused",
                   detail=f"{exc.message}. Nothing was sent.")


def _endpoint_origin(endpoint: str) -> str | None:
    """The VAPID audience of an endpoint, or None when it is not an http(s) URL with a host."""
    try:
        parts = urlsplit(endpoint)
        _ = parts.port  # raises on a bad port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("https", "http") or not parts.hostname:
        return None
    return audience(endpoint)
