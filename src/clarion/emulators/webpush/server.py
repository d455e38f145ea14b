"""A local Web Push service that also plays the browsers subscribed to it.

``POST /_emulator/subscribe`` with ``{"applicationServerKey": <VAPID public key>}`` does what
``pushManager.subscribe()`` does in a browser: the emulator makes and keeps the P-256 key pair
and 16-byte auth secret and returns ``PushSubscription.toJSON()``
(``{"endpoint", "expirationTime", "keys": {"p256dh", "auth"}}``). ``POST /push/<id>`` is the
push service (checks in ``checks``); a message that passes is DECRYPTED with the subscription's
keys, recorded, and answered 201 with ``Location``. A body that does not decrypt is answered 400
(a real push service cannot tell and would take it; the browser would then drop it silently).

Unknown ids answer 404, gone ones (``mark_gone`` or ids starting with ``gone``) 410. Faults:
seeded 429/503 rates with ``Retry-After``, latency, and a dropped connection every N pushes.
``GET /_emulator/received`` lists decrypted messages; ``--log`` writes a JSON line per request.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import random
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import http_ece  # type: ignore[import-untyped]
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from clarion.emulators.devices import SimulatedDevices, notification_from
from clarion.emulators.serving import HttpEmulator, drop_connection
from clarion.emulators.webpush.checks import (
    Refusal,
    VapidVerifier,
    b64url,
    check_headers,
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class Subscription:
    id: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    application_server_key: bytes | None
    gone: bool = False

    def as_json(self) -> dict[str, Any]:
        """``PushSubscription.toJSON()``, what a site posts to its server (and to Clarion)."""
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": _b64(point), "auth": _b64(self.auth)}}


@dataclass
class ReceivedMessage:
    id: str
    subscription_id: str
    ttl: int
    urgency: str | None
    topic: str | None
    plaintext: bytes | None  # None: a push without payload
    vapid_claims: dict[str, Any]
    vapid_key: str
    received_at: float = field(default_factory=time.time)

    @property
    def json(self) -> Any:
        """The decrypted payload parsed as JSON (None when it is not JSON)."""
        if self.plaintext is None:
            return None
        try:
            return json.loads(self.plaintext)
        except ValueError:
            return None

    def as_dict(self) -> dict[str, Any]:
        text = None if self.plaintext is None else self.plaintext.decode("utf-8", "replace")
        return {"id": self.id, "subscription": self.subscription_id, "ttl": self.ttl,
                "urgency": self.urgency, "topic": self.topic, "payload": self.json,
                "plaintext": text, "vapid": {**self.vapid_claims, "k": self.vapid_key},
                "received_at": self.received_at}


class WebPushEmulator(HttpEmulator):
    """Start with ``await start()`` (returns the port); knobs may change while it runs."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0,
                 ssl_context: ssl.SSLContext | None = None, rate_429: float = 0.0,
                 rate_503: float = 0.0, retry_after: int = 1, latency_ms: float = 0.0,
                 drop_every: int = 0, seed: int = 0, log_path: Path | None = None,
                 clock: Callable[[], float] = time.time,
                 devices: SimulatedDevices | None = None) -> None:
        super().__init__(host=host, port=port, ssl_context=ssl_context, log_path=log_path)
        self.rate_429 = rate_429
        self.rate_503 = rate_503
        self.retry_after = retry_after
        self.latency_ms = latency_ms
        self.drop_every = drop_every
        self.clock = clock
        self.subscriptions: dict[str, Subscription] = {}
        self.received: list[ReceivedMessage] = []
        self.requests: list[dict[str, Any]] = []  # one record per push request: the --log lines
        self.pushes = 0  # POST /push/<id> requests seen (drop_every counts these)
        self.in_flight = 0  # pushes being handled now, and the most seen at once
        self.peak_in_flight = 0
        self._random = random.Random(seed)
        self._verifier = VapidVerifier()
        self.devices = devices  # the browsers' service workers, told of each message

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host  # noqa: S104
        return f"{self.scheme}://{host}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/push/{sub_id}", self._push)
        app.router.add_post("/_emulator/subscribe", self._subscribe)
        app.router.add_post("/_emulator/gone", self._gone)
        app.router.add_get("/_emulator/received", self._received)
        app.router.add_delete("/_emulator/received", self._clear)
        return app

    # --- the browsers' side ----------------------------------------------------------------

    def subscribe(self, application_server_key: str | None = None, *,
                  origin: str | None = None) -> dict[str, Any]:
        """Create a subscription as a browser would; returns ``PushSubscription.toJSON()``."""
        asks = None
        if application_server_key:
            asks = b64url(application_server_key)
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), asks)  # ValueError
        sub_id = secrets.token_urlsafe(16)
        while sub_id.startswith("gone"):
            sub_id = secrets.token_urlsafe(16)
        sub = Subscription(id=sub_id, endpoint=f"{origin or self.origin}/push/{sub_id}",
                           private_key=ec.generate_private_key(ec.SECP256R1()),
                           auth=os.urandom(16), application_server_key=asks)
        self.subscriptions[sub_id] = sub
        return sub.as_json()

    def mark_gone(self, sub_id_or_endpoint: str) -> None:
        """The browser unsubscribed (or the subscription expired): pushes now answer 410."""
        sub_id = sub_id_or_endpoint.rstrip("/").rsplit("/", 1)[-1]
        sub = self.subscriptions.get(sub_id)
        if sub is None:
            raise KeyError(sub_id)
        sub.gone = True

    def messages_for(self, endpoint: str) -> list[ReceivedMessage]:
        sub_id = endpoint.rstrip("/").rsplit("/", 1)[-1]
        return [m for m in self.received if m.subscription_id == sub_id]

    # --- handlers --------------------------------------------------------------------------

    async def _push(self, request: web.Request) -> web.StreamResponse:
        self.pushes += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self._handle_push(request)
        finally:
            self.in_flight -= 1

    async def _handle_push(self, request: web.Request) -> web.StreamResponse:
        sub_id = request.match_info["sub_id"]
        record: dict[str, Any] = {"time": self.clock(), "method": request.method,
                                  "path": request.path, "subscription": sub_id}
        if self.drop_every and self.pushes % self.drop_every == 0:
            record.update(status=None, answer="connection dropped")
            self._record(record)
            drop_connection(request)
        try:
            body = await request.read()
        except ConnectionResetError:  # the client gave up while sending
            raise asyncio.CancelledError from None
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        record.update(ttl=request.headers.get("TTL"), urgency=request.headers.get("Urgency"),
                      topic=request.headers.get("Topic"),
                      content_encoding=request.headers.get("Content-Encoding"),
                      body_bytes=len(body))
        try:
            message = self._accept(request, sub_id, body, record)
        except Refusal as refusal:
            record.update(status=refusal.status, answer=refusal.body())
            self._record(record)
            return web.json_response(refusal.body(), status=refusal.status,
                                     headers=refusal.headers)
        self.received.append(message)
        if self.devices is not None:
            # The device token of a browser is its subscription's endpoint, as registered.
            sub = self.subscriptions[sub_id]
            notification = notification_from("web", sub.endpoint, message.json)
            if notification is not None:
                self.devices.notify(notification)
        record.update(status=201, answer={"location": f"/m/{message.id}"},
                      payload=message.json if message.json is not None else (
                          None if message.plaintext is None
                          else message.plaintext.decode("utf-8", "replace")))
        self._record(record)
        origin = f"{self.scheme}://{request.host}"
        return web.Response(status=201, headers={"Location": f"{origin}/m/{message.id}",
                                                 "TTL": str(message.ttl)})

    def _accept(self, request: web.Request, sub_id: str, body: bytes,
                record: dict[str, Any]) -> ReceivedMessage:
        sub = self.subscriptions.get(sub_id)
        if sub is None and not sub_id.startswith("gone"):
            raise Refusal(404, "Invalid token: no such push endpoint", errno=102)
        if sub is None or sub.gone:
            raise Refusal(410, "No such subscription: it expired or the browser unsubscribed",
                          errno=106, headers={"Cache-Control": "max-age=86400"})
        roll = self._random.random()
        retry = {"Retry-After": str(self.retry_after)}
        if roll < self.rate_429:
            raise Refusal(429, "Too many requests for this subscription", headers=retry)
        if roll < self.rate_429 + self.rate_503:
            raise Refusal(503, "Service unavailable, try again later", headers=retry)
        delivery = check_headers(request.headers, len(body))
        origin = f"{self.scheme}://{request.host}"
        vapid = self._verifier.verify(request.headers.get("Authorization"), origin=origin,
                                      now=self.clock())
        record["vapid"] = {**vapid.claims, "k": _b64(vapid.key),
                           "token_sha256": hashlib.sha256(vapid.token.encode()).hexdigest()[:16]}
        if sub.application_server_key is not None and vapid.key != sub.application_server_key:
            raise Refusal(403, "VAPID public key mismatch: the VAPID credentials in the "
                          "authorization header do not correspond to the credentials used to "
                          "create the subscription", errno=109)
        plaintext = self._decrypt(sub, body) if body else None
        return ReceivedMessage(id=secrets.token_urlsafe(12), subscription_id=sub_id,
                               ttl=delivery.ttl, urgency=delivery.urgency, topic=delivery.topic,
                               plaintext=plaintext, vapid_claims=dict(vapid.claims),
                               vapid_key=_b64(vapid.key))

    @staticmethod
    def _decrypt(sub: Subscription, body: bytes) -> bytes:
        # RFC 8291 §4: one record, and the key id is the sender's 65-byte P-256 key.
        if len(body) < 21 + 65 + 17 or body[20] != 65:
            raise Refusal(400, "Invalid aes128gcm body: the header must carry the sender's "
                          "65-byte P-256 key as key id (RFC 8291 §4)", errno=110)
        try:
            plaintext: bytes = http_ece.decrypt(body, private_key=sub.private_key,
                                                auth_secret=sub.auth, version="aes128gcm")
        except (http_ece.ECEException, ValueError) as exc:
            message = getattr(exc, "message", str(exc))
            raise Refusal(400, f"The body does not decrypt with the subscription's keys "
                          f"({message}); a browser would drop this message", errno=110) from exc
        return plaintext

    async def _subscribe(self, request: web.Request) -> web.Response:
        try:
            raw = await request.json() if request.can_read_body else {}
        except ValueError:
            raw = None
        if not isinstance(raw, dict):
            return web.json_response({"error": "send a JSON object: "
                                      '{"applicationServerKey": "<VAPID public key>"}'}, status=400)
        key = raw.get("applicationServerKey")
        if key is not None and not isinstance(key, str):
            return web.json_response({"error": "applicationServerKey must be a base64url "
                                      "string"}, status=400)
        try:
            sub = self.subscribe(key, origin=f"{self.scheme}://{request.host}")
        except ValueError as exc:
            return web.json_response({"error": f"applicationServerKey is not a P-256 public "
                                      f"key ({exc})"}, status=400)
        return web.json_response(sub, status=201)

    async def _gone(self, request: web.Request) -> web.Response:
        try:
            raw = await request.json()
            self.mark_gone(str(raw.get("endpoint") or raw.get("id") or ""))
        except (ValueError, AttributeError, KeyError):
            return web.json_response({"error": 'send {"endpoint": ...} or {"id": ...} of an '
                                      "existing subscription"}, status=400)
        return web.Response(status=204)

    async def _received(self, request: web.Request) -> web.Response:
        return web.json_response({"messages": [m.as_dict() for m in self.received]})

    async def _clear(self, request: web.Request) -> web.Response:
        self.received.clear()
        self.requests.clear()
        return web.Response(status=204)

    def _record(self, record: dict[str, Any]) -> None:
        self.requests.append(record)
        self._write_log(record)
