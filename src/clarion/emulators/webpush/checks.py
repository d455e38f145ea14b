"""What a push service checks on ``POST /push/<subscription>`` before it takes a message.

Written from the RFCs (RFC 8030 §5 headers, RFC 8292 §2-§4 VAPID, RFC 8291 §4 size) and the
answers of Mozilla autopush, whose error bodies are ``{"code", "errno", "error", "message",
"more_info"}``: 400 for a bad header (errno 110 encoding, 111 TTL), 401 errno 109 for a JWT it
refuses, 404 errno 102 for an unknown endpoint, 410 errno 106 for a gone subscription, 413
errno 104 for a body over 4096 bytes. A key that differs from the subscription's
applicationServerKey is answered 403 (as FCM and RFC 8292 §4.2 do) with Mozilla's words
"VAPID public key mismatch". Deliberately independent of ``clarion.providers.webpush``: the
emulator must not share the sender's mistakes.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

MAX_BODY = 4096  # RFC 8030 §7.2 / RFC 8291 §4: what push services guarantee to take
MAX_EXP_AHEAD = 24 * 3600  # RFC 8292 §2: exp no more than 24 hours from the request
URGENCIES = frozenset({"very-low", "low", "normal", "high"})  # RFC 8030 §5.3
TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")  # RFC 8030 §5.4
MORE_INFO = "https://mozilla-services.github.io/autopush-rs/http-errors.html"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_VERIFIED_CACHE = 4096


class Refusal(Exception):
    """An answer other than 201, with its autopush-style body."""

    def __init__(self, status: int, message: str, *, errno: int | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errno = errno
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"code": self.status, "errno": self.errno,
                "error": HTTPStatus(self.status).phrase, "message": self.message,
                "more_info": MORE_INFO}


@dataclass(frozen=True, slots=True)
class Delivery:
    """The headers of a push request once checked."""

    ttl: int
    urgency: str | None
    topic: str | None
    encoding: str | None


@dataclass(frozen=True, slots=True)
class Vapid:
    token: str
    key: bytes  # the raw uncompressed point of k=
    claims: Mapping[str, Any]


def b64url(data: str) -> bytes:
    data = data.strip()
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def check_headers(headers: Mapping[str, str], body_length: int) -> Delivery:
    """TTL (mandatory, RFC 8030 §5.2), Content-Encoding, Urgency, Topic and the body size."""
    ttl_text = headers.get("TTL")
    if ttl_text is None:
        raise Refusal(400, "Missing TTL header", errno=111)
    if not ttl_text.strip().isdigit():
        raise Refusal(400, f"Invalid TTL header value {ttl_text[:40]!r}", errno=111)
    encoding = headers.get("Content-Encoding")
    if body_length:
        if encoding is None:
            raise Refusal(400, "Missing Content-Encoding header", errno=110)
        if encoding.strip().lower() != "aes128gcm":
            raise Refusal(400, f"Unknown Content-Encoding {encoding[:40]!r}: only aes128gcm "
                          "(RFC 8291) is accepted", errno=110)
    urgency = headers.get("Urgency")
    if urgency is not None and urgency.strip().lower() not in URGENCIES:
        raise Refusal(400, f"Invalid Urgency header value {urgency[:40]!r}")
    topic = headers.get("Topic")
    if topic is not None and not TOPIC.fullmatch(topic):
        raise Refusal(400, "Invalid Topic header value: at most 32 characters of the base64url "
                      "alphabet (RFC 8030 §5.4)")
    if body_length > MAX_BODY:
        raise Refusal(413, f"Data payload must be smaller than {MAX_BODY + 1} bytes "
                      f"(this one is {body_length})", errno=104)
    return Delivery(ttl=int(ttl_text), urgency=urgency.strip().lower() if urgency else None,
                    topic=topic, encoding=encoding)


def parse_authorization(value: str | None) -> tuple[str, str]:
    """``vapid t=<jwt>, k=<key>`` (RFC 8292 §3) → (t, k); spaces after the comma optional."""
    if not value:
        raise Refusal(401, "Missing VAPID token", errno=109)
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "vapid":
        raise Refusal(401, f"Unknown auth scheme {scheme[:20]!r}: use vapid (RFC 8292)",
                      errno=109)
    params: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, val = part.strip().partition("=")
        if sep:
            params[name.strip().lower()] = val.strip()
    if not params.get("t"):
        raise Refusal(401, "Missing VAPID token", errno=109)
    if not params.get("k"):
        raise Refusal(401, "Missing VAPID public key", errno=109)
    return params["t"], params["k"]


def same_origin(aud: str, origin: str) -> bool:
    def norm(url: str) -> tuple[str, str, int | None]:
        parts = urlsplit(url.rstrip("/"))
        scheme = parts.scheme.lower()
        return scheme, (parts.hostname or ""), parts.port or _DEFAULT_PORTS.get(scheme)

    try:
        return norm(aud) == norm(origin)
    except ValueError:
        return False


class VapidVerifier:
    """Verifies VAPID JWTs (ES256 by k=), caching signature checks per (token, key) as real
    push services do; aud, exp and sub are checked on every request."""

    def __init__(self) -> None:
        self._verified: dict[tuple[str, str], Vapid] = {}

    def verify(self, authorization: str | None, *, origin: str, now: float) -> Vapid:
        token, k = parse_authorization(authorization)
        vapid = self._verified.get((token, k))
        if vapid is None:
            vapid = self._signature(token, k)
            if len(self._verified) >= _VERIFIED_CACHE:
                self._verified.clear()
            self._verified[(token, k)] = vapid
        claims = vapid.claims
        aud = claims.get("aud")
        if not isinstance(aud, str) or not same_origin(aud, origin):
            raise Refusal(401, f"Invalid VAPID audience: aud must be {origin}, got "
                          f"{str(aud)[:80]!r}", errno=109)
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp <= now:
            raise Refusal(401, "Invalid VAPID expiry: exp is missing or in the past", errno=109)
        if exp > now + MAX_EXP_AHEAD:
            raise Refusal(401, "The VAPID token expiration is too long (more than 24 hours)",
                          errno=109)
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
            raise Refusal(401, "Invalid VAPID sub: a mailto: or https: contact is required",
                          errno=109)
        return vapid

    @staticmethod
    def _signature(token: str, k: str) -> Vapid:
        try:
            raw = b64url(k)
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except (ValueError, binascii.Error) as exc:
            raise Refusal(401, f"Invalid VAPID public key: {exc}", errno=109) from exc
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != "ES256":
                raise Refusal(401, "Invalid VAPID token: alg must be ES256", errno=109)
            claims = jwt.decode(token, key, algorithms=["ES256"],
                                options={"verify_exp": False, "verify_aud": False,
                                         "verify_iat": False, "verify_nbf": False})
        except jwt.InvalidSignatureError as exc:
            raise Refusal(401, "Invalid VAPID token: the signature does not verify with k",
                          errno=109) from exc
        except jwt.PyJWTError as exc:
            raise Refusal(401, f"Invalid VAPID token: {exc}", errno=109) from exc
        return Vapid(token=token, key=raw, claims=claims)
