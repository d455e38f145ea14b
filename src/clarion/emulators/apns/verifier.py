"""What the APNs emulator answers to one request: Apple's checks, in Apple's words.

Sources: Apple, "Sending notification requests to APNs" (path, headers, push types, priority,
expiration, collapse id, payload sizes) and "Handling notification responses from APNs"
(status codes and ``reason`` strings). Each check below names the reason it answers.

Beyond Apple (documented so nobody mistakes it for Apple behaviour):
- a body that is not a JSON object answers 400 ``BadPayload`` (Apple documents no reason);
- ``background`` pushes without ``aps.content-available: 1`` answer 400 ``InvalidPushType``;
- test hooks: tokens starting with ``dead`` (or marked dead) are 410 ``Unregistered``; tokens
  starting with ``badd`` (or tagged with the other environment) are 400 ``BadDeviceToken``;
  a token tagged with another topic is 400 ``DeviceTokenNotForTopic``; seeded random
  429 ``TooManyRequests`` / 503 ``ServiceUnavailable`` with ``retry-after``.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from clarion.emulators.apns.keys import AuthRefused, CertIdentity, KeyRegistry, TokenIdentity

PUSH_TYPES = frozenset({"alert", "background", "location", "voip", "complication",
                        "fileprovider", "mdm", "liveactivity", "pushtotalk", "widgets",
                        "controls"})
_TOPIC_SUFFIXES = (".voip-ptt", ".voip", ".complication", ".pushkit.fileprovider",
                   ".push-type.liveactivity", ".push-type.widgets", ".push-type.controls",
                   ".location-query")
_HEX_TOKEN = re.compile(r"(?:[0-9a-fA-F]{2}){32,100}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TOPIC = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
SINGLE_HEADERS = (b"apns-topic", b"apns-push-type", b"apns-priority", b"apns-expiration",
           b"apns-collapse-id", b"apns-id", b"authorization")


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    duplicate: bool
    body: bytes
    cert: CertIdentity | None


@dataclass
class Answer:
    status: int
    reason: str | None
    apns_id: str
    payload: Any = None
    token: str | None = None
    jwt: TokenIdentity | None = None
    retry_after: str | None = None
    timestamp: int | None = None  # 410: when APNs learnt the token was gone (ms)

    def body(self) -> bytes:
        if self.reason is None:
            return b""
        out: dict[str, Any] = {"reason": self.reason}
        if self.timestamp is not None:
            out["timestamp"] = self.timestamp
        return orjson.dumps(out)


def base_topic(topic: str) -> str:
    for suffix in _TOPIC_SUFFIXES:
        if topic.endswith(suffix):
            return topic[: -len(suffix)]
    return topic


@dataclass
class Verifier:
    keys: KeyRegistry
    environment: str = "sandbox"
    rate_429: float = 0.0
    rate_503: float = 0.0
    retry_after_seconds: int = 1
    seed: int = 0
    clock: Callable[[], float] = field(default=lambda: 0.0)
    dead: dict[str, int] = field(default_factory=dict)  # token → timestamp ms
    token_env: dict[str, str] = field(default_factory=dict)
    token_topic: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def answer(self, req: Request) -> Answer:
        apns_id = req.headers.get("apns-id") or str(uuid.uuid4())
        ans = Answer(200, None, apns_id)
        try:
            self._check(req, ans)
        except _Stop as stop:
            ans.status, ans.reason = stop.status, stop.reason
        return ans

    def _check(self, req: Request, ans: Answer) -> None:
        h = req.headers
        if req.method != "POST":
            raise _Stop(405, "MethodNotAllowed")
        if not req.path.startswith("/3/device/"):
            raise _Stop(404, "BadPath")
        token = req.path[len("/3/device/"):]
        ans.token = token or None
        if not token:
            raise _Stop(400, "MissingDeviceToken")
        if req.duplicate:
            raise _Stop(400, "DuplicateHeaders")
        apns_id = h.get("apns-id")
        if apns_id is not None and not _UUID.fullmatch(apns_id):
            ans.apns_id = str(uuid.uuid4())
            raise _Stop(400, "BadMessageId")
        # Authentication: a provider token, else the TLS client certificate.
        now = self.clock()
        topic = h.get("apns-topic")
        authorization = h.get("authorization")
        allowed: set[str] = set()
        if authorization is not None:
            try:
                ans.jwt = self.keys.verify(authorization, now)
            except AuthRefused as refused:
                raise _Stop(refused.status, refused.reason) from refused
            allowed = self.keys.topics_of(ans.jwt.key_id)
        elif req.cert is not None:
            if req.cert.environment not in ("both", self.environment):
                raise _Stop(403, "BadCertificateEnvironment")
            allowed = {req.cert.topic}
            topic = topic or req.cert.topic  # a single-topic certificate implies the topic
        else:
            raise _Stop(403, "MissingProviderToken")
        if not topic:
            raise _Stop(400, "MissingTopic")
        if not _TOPIC.fullmatch(topic):
            raise _Stop(400, "BadTopic")
        if allowed and base_topic(topic) not in allowed:
            raise _Stop(400, "TopicDisallowed")
        push_type = h.get("apns-push-type", "alert")
        if push_type not in PUSH_TYPES:
            raise _Stop(400, "InvalidPushType")
        priority = h.get("apns-priority", "10")
        if priority not in ("1", "5", "10") or (push_type == "background" and priority != "5"):
            raise _Stop(400, "BadPriority")
        expiration = h.get("apns-expiration")
        if expiration is not None and not expiration.isdigit():
            raise _Stop(400, "BadExpirationDate")
        collapse = h.get("apns-collapse-id")
        if collapse is not None and len(collapse.encode("latin-1")) > 64:
            raise _Stop(400, "BadCollapseId")
        limit = 5120 if push_type == "voip" else 4096
        if not req.body:
            raise _Stop(400, "PayloadEmpty")
        if len(req.body) > limit:
            raise _Stop(413, "PayloadTooLarge")
        try:
            payload = orjson.loads(req.body)
        except orjson.JSONDecodeError as exc:
            raise _Stop(400, "BadPayload") from exc
        if not isinstance(payload, dict):
            raise _Stop(400, "BadPayload")
        ans.payload = payload
        aps = payload.get("aps")
        if push_type == "background" and (not isinstance(aps, dict)
                                          or aps.get("content-available") != 1):
            raise _Stop(400, "InvalidPushType")
        # Faults injected on purpose, after the request was found well-formed.
        if self.rate_429 and self._rng.random() < self.rate_429:
            ans.retry_after = str(self.retry_after_seconds)
            raise _Stop(429, "TooManyRequests")
        if self.rate_503 and self._rng.random() < self.rate_503:
            ans.retry_after = str(self.retry_after_seconds)
            raise _Stop(503, "ServiceUnavailable")
        # The device token.
        if not _HEX_TOKEN.fullmatch(token):
            raise _Stop(400, "BadDeviceToken")
        key = token.lower()
        env = self.token_env.get(key)
        if key.startswith("badd") or (env is not None and env != self.environment):
            raise _Stop(400, "BadDeviceToken")
        owner = self.token_topic.get(key)
        if owner is not None and owner != base_topic(topic):
            raise _Stop(400, "DeviceTokenNotForTopic")
        if key.startswith("dead") or key in self.dead:
            ans.timestamp = self.dead.get(key, int(now * 1000))
            raise _Stop(410, "Unregistered")


class _Stop(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
