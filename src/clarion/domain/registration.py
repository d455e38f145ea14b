"""Device registration rules: the CIJ request shapes, token formats and failure reasons.

Pure: parses the JSON documents CIJ backends send (keys matched case-insensitively, as CIJ's
.NET deserialiser does) into typed requests, and decides per request what is wrong with it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from clarion.domain import text
from clarion.domain.cij_shapes import (
    API_TOKEN,
    DEVICE_CLEANUP,
    DEVICE_REGISTRATION,
    MOBILE_APP_ID,
    STATUS_QUERY,
    USER_ID,
    WEB_PUSH_SUBSCRIPTION,
    Field,
)
from clarion.domain.outcomes import Platform
from clarion.errors import InvalidInput
from clarion.ids import canonical_guid

MAX_BATCH = 100  # CIJ's documented batch limit
APNS_MAX_LEN = 64  # CIJ: longer APNs tokens fail with DeviceTokenTooLong
APNS_MIN_LEN = 32  # Apple's tokens are 32 bytes (64 hex); anything under 16 bytes is not one
FCM_MAX_LEN = 4096
WEBPUSH_ENDPOINT_MAX_LEN = 2048


class Status(StrEnum):
    PENDING = "Pending"
    SUCCESS = "Success"
    FAILED = "Failed"


class FailureReason(StrEnum):
    # CIJ's reasons
    DUPLICATE_EXISTS = "DuplicateExists"
    DRY_RUN_SENDING_FAILED = "DryRunSendingFailed"
    DEVICE_TOKEN_TOO_LONG = "DeviceTokenTooLong"
    FAILED_TO_STORE_DEVICE = "FailedToStoreDevice"
    API_TOKEN_NOT_VALID = "ApiTokenNotValid"
    # Clarion's additions (documented in docs/api.md)
    USER_NOT_FOUND = "UserNotFound"
    INVALID_DEVICE_TOKEN = "InvalidDeviceToken"
    PLATFORM_NOT_CONFIGURED = "PlatformNotConfigured"


class TokenKind(StrEnum):
    APNS = "apns"
    FCM = "fcm"
    WEBPUSH = "webpush"

    @property
    def platform(self) -> Platform:
        return {TokenKind.APNS: Platform.IOS, TokenKind.FCM: Platform.ANDROID,
                TokenKind.WEBPUSH: Platform.WEB}[self]


_TOKEN_FIELDS = {
    DEVICE_REGISTRATION["ApnsDeviceToken"]: TokenKind.APNS,
    DEVICE_REGISTRATION["FcmDeviceToken"]: TokenKind.FCM,
    DEVICE_REGISTRATION["WebPushSubscription"]: TokenKind.WEBPUSH,
}
_HEX = re.compile(r"^[0-9a-fA-F]+$")


@dataclass(frozen=True, slots=True)
class DeviceRequest:
    mobile_app_id: str
    user_id: str
    api_token: str
    token_kind: TokenKind
    token: str  # APNs hex (lower-cased), FCM token, or Web Push endpoint
    web_keys: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class CleanupRequest:
    mobile_app_id: str
    user_id: str
    api_token: str
    device_token: str | None


@dataclass(frozen=True, slots=True)
class StatusQuery:
    mobile_app_id: str
    api_token: str
    request_ids: list[str]


def _fold(obj: Any, where: str) -> dict[str, Any]:
    if not isinstance(obj, Mapping):
        raise InvalidInput(f"{where} must be a JSON object",
                           fix="Send a JSON object such as {\"MobileAppId\": ..., \"UserId\": ..., "
                           "\"ApiToken\": ..., \"ApnsDeviceToken\": ...}.")
    return {str(k).lower(): v for k, v in obj.items()}


def _text(d: dict[str, Any], f: Field, where: str) -> str:
    value, name, max_len = d.get(f.key), f.name, f.max_length
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{where}: {name} is missing or not a non-empty string",
                           fix=f"Add \"{name}\" to the request body.", field=name)
    value = value.strip()
    if len(value) > max_len:
        raise InvalidInput(f"{where}: {name} is longer than {max_len} characters",
                           fix=f"Check the value of \"{name}\".", field=name)
    return value


def _guid(d: dict[str, Any], f: Field, where: str) -> str:
    value, name = _text(d, f, where), f.name
    try:
        return canonical_guid(value) or str(uuid.UUID(value))
    except ValueError as exc:
        raise InvalidInput(f"{where}: {name} {value!r} is not a GUID",
                           fix=f"Use the {name} shown in the app's developer information.",
                           field=name) from exc


def _user_id(d: dict[str, Any], where: str) -> str:
    """People ids are GUIDs: keep the canonical lower-case form, so the same person written in
    upper case is the same person (lookups, cleanup, deletion). Anything else is kept as sent
    and fails later with UserNotFound."""
    value = _text(d, USER_ID, where)
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return value


def _b64url_bytes(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _web_subscription(value: Any, where: str) -> tuple[str, dict[str, str]]:
    sub = _fold(value, f"{where}: WebPushSubscription")
    endpoint = sub.get(WEB_PUSH_SUBSCRIPTION["endpoint"].key)
    keys = _fold(sub.get(WEB_PUSH_SUBSCRIPTION["keys"].key), f"{where}: WebPushSubscription.keys")
    if not isinstance(endpoint, str) or not endpoint:
        raise InvalidInput(f"{where}: WebPushSubscription.endpoint is missing",
                           fix="Send the browser's PushSubscription.toJSON() as is.",
                           field="WebPushSubscription.endpoint")
    # the URL Clarion POSTs to: no control character (RFC 3986 §2)
    text.controls(endpoint, "WebPushSubscription.endpoint",
                  what=f"{where}: WebPushSubscription.endpoint")
    out: dict[str, str] = {}
    for name, size in (("p256dh", 65), ("auth", 16)):
        raw = keys.get(name)
        try:
            decoded = _b64url_bytes(raw) if isinstance(raw, str) else b""
        except (binascii.Error, ValueError):
            decoded = b""
        if len(decoded) != size:
            raise InvalidInput(
                f"{where}: WebPushSubscription.keys.{name} is not a base64url value of "
                f"{size} bytes",
                fix="Send the browser's PushSubscription.toJSON() as is.",
                field=f"WebPushSubscription.keys.{name}")
        out[name] = raw  # type: ignore[assignment]
    return endpoint.strip(), out


def parse_device(obj: Any, where: str = "body") -> DeviceRequest:
    """A registration body, or InvalidInput (the CIJ 400) naming what is wrong."""
    d = _fold(obj, where)
    present = [(f, kind) for f, kind in _TOKEN_FIELDS.items()
               if d.get(f.key) not in (None, "")]
    if len(present) != 1:
        raise InvalidInput(
            f"{where}: exactly one of ApnsDeviceToken, FcmDeviceToken or WebPushSubscription is "
            f"needed, {len(present)} given",
            fix="Put the device token in ApnsDeviceToken (iOS), FcmDeviceToken (Android) or the "
            "browser subscription in WebPushSubscription.")
    given, kind = present[0]
    key = given.key
    web_keys = None
    if kind is TokenKind.WEBPUSH:
        token, web_keys = _web_subscription(d[key], where)
    else:
        raw = d[key]
        if not isinstance(raw, str):
            raise InvalidInput(f"{where}: {key} must be a string", field=key,
                               fix="Send the device token as a JSON string.")
        token = raw.strip()
        if len(token) > given.max_length:
            raise InvalidInput(f"{where}: the device token is {len(token)} characters long",
                               fix="Send the token the platform gave the app.", field=key)
        if kind is TokenKind.APNS:
            token = token.lower()
    return DeviceRequest(
        mobile_app_id=_guid(d, MOBILE_APP_ID, where),
        user_id=_user_id(d, where),
        api_token=_text(d, API_TOKEN, where),
        token_kind=kind,
        token=token,
        web_keys=web_keys,
    )


def parse_device_batch(obj: Any) -> list[DeviceRequest]:
    items = _batch(obj)
    return [parse_device(item, f"item {i}") for i, item in enumerate(items)]


def _batch(obj: Any) -> list[Any]:
    if isinstance(obj, Mapping):
        return [obj]  # the CIJ sample for cleanup/batch shows a single object: accept it
    if not isinstance(obj, list) or not obj:
        raise InvalidInput("the body must be a non-empty JSON array of requests",
                           fix="Send [ {...}, {...} ] with 1 to 100 objects.")
    if len(obj) > MAX_BATCH:
        raise InvalidInput(f"a batch holds at most {MAX_BATCH} requests, {len(obj)} given",
                           fix=f"Split it into batches of {MAX_BATCH}.")
    return obj


def parse_cleanup(obj: Any, where: str = "body") -> CleanupRequest:
    d = _fold(obj, where)
    token = d.get(DEVICE_CLEANUP["DeviceToken"].key)
    if token is not None and not isinstance(token, str):
        raise InvalidInput(f"{where}: DeviceToken must be a string", field="DeviceToken",
                           fix="Send the device token as a string, or leave it out to remove "
                           "every device of that user for that app.")
    return CleanupRequest(
        mobile_app_id=_guid(d, MOBILE_APP_ID, where),
        user_id=_user_id(d, where),
        api_token=_text(d, API_TOKEN, where),
        device_token=token.strip() or None if isinstance(token, str) else None,
    )


def parse_cleanup_batch(obj: Any) -> list[CleanupRequest]:
    return [parse_cleanup(item, f"item {i}") for i, item in enumerate(_batch(obj))]


def parse_status_query(obj: Any) -> StatusQuery:
    d = _fold(obj, "body")
    ids_field = STATUS_QUERY["RegistrationRequestIds"]
    ids = d.get(ids_field.key)
    if not isinstance(ids, list) or not ids or len(ids) > ids_field.schema["maxItems"]:
        raise InvalidInput("RegistrationRequestIds must be an array of 1 to 1000 ids",
                           fix="Send the ids returned with x-ms-track-registration: true.",
                           field="RegistrationRequestIds")
    clean: list[str] = []
    for i, value in enumerate(ids):
        try:
            clean.append(str(uuid.UUID(str(value))))
        except ValueError as exc:
            raise InvalidInput(f"RegistrationRequestIds[{i}] {value!r} is not a GUID",
                               field="RegistrationRequestIds",
                               fix="Send the ids returned by the registration call.") from exc
    return StatusQuery(
        mobile_app_id=_guid(d, MOBILE_APP_ID, "body"),
        api_token=_text(d, API_TOKEN, "body"),
        request_ids=clean,
    )


_CALLBACK_HEADERS = "x-ms-callback-url-headers"
_CALLBACK_HEADERS_FIX = 'Send a JSON object such as {"Authorization": "Bearer ..."}.'


# The header fields the client that sends the callback owns. A caller's value would re-frame or
# re-route the POST (request smuggling towards the callback's host) or be silently dropped:
# Host (RFC 9112 §3.2), Content-Length (RFC 9110 §8.6), Transfer-Encoding (RFC 9112 §6.1), and
# the hop-by-hop fields (RFC 9110 §7.6.1: Connection and the fields it names - Keep-Alive,
# Proxy-Connection, TE, Trailer, Upgrade - and every Proxy-* field, meant for a proxy on the
# way; HTTP2-Settings, RFC 9113 §3.2.1). Compared case-insensitively (RFC 9110 §5.1).
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection",
                               "keep-alive", "te", "trailer", "upgrade", "http2-settings"})
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # token, RFC 9110 §5.6.2
# RFC 9110 §5.5: visible characters, space and tab. obs-text (bytes over 0x7F) is refused too:
# the callback client writes header values as ASCII.
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")


def parse_callback_headers(raw: str | None) -> dict[str, str] | None:
    """``x-ms-callback-url-headers``: a JSON object of header name to value, ordinary
    end-to-end headers only (``Authorization``, ``X-Api-Key``, ...)."""
    if raw is None or not raw.strip():
        return None
    # orjson, nesting bounded: 1,000 nested arrays were a RecursionError (a 500) with json
    value = text.loads(raw, what=_CALLBACK_HEADERS, fix=_CALLBACK_HEADERS_FIX)
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidInput("x-ms-callback-url-headers must be a JSON object of strings",
                           fix=_CALLBACK_HEADERS_FIX, field=_CALLBACK_HEADERS)
    if len(value) > 20 or any(len(k) > 256 or len(v) > 4096 for k, v in value.items()):
        raise InvalidInput("x-ms-callback-url-headers is too large (≤ 20 headers, values ≤ 4 KB)",
                           fix="Send fewer or shorter callback headers.", field=_CALLBACK_HEADERS)
    for k, v in value.items():
        if not _HEADER_NAME.fullmatch(k):
            raise InvalidInput(f"x-ms-callback-url-headers: {k!r} is not a valid header name",
                               fix="Use plain header names such as X-Api-Key.",
                               field=_CALLBACK_HEADERS)
        lower = k.lower()
        if lower in _RESERVED_HEADERS or lower.startswith("proxy-"):
            raise InvalidInput(
                f"x-ms-callback-url-headers may not set {k!r}: the callback's framing, host "
                "and connection headers are Clarion's HTTP client's",
                fix=f"Remove {k!r}; send only end-to-end headers such as Authorization.",
                field=_CALLBACK_HEADERS)
        bad = _HEADER_VALUE.fullmatch(v) is None
        if bad:
            at = next(i for i, c in enumerate(v) if not _HEADER_VALUE.fullmatch(c))
            raise InvalidInput(
                f"x-ms-callback-url-headers: the value of {k!r} contains "
                f"{text.describe(v[at])} at character {at + 1}",
                fix="Header values are single-line printable ASCII (RFC 9110 §5.5).",
                field=_CALLBACK_HEADERS)
    return value


_SPACE = re.compile(r"\s")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_token(kind: TokenKind, token: str) -> tuple[FailureReason, str] | None:
    """Why a token cannot be stored (reason, sentence), or None when its format is fine."""
    if kind is TokenKind.APNS:
        if len(token) > APNS_MAX_LEN:
            return (FailureReason.DEVICE_TOKEN_TOO_LONG,
                    f"APNs device tokens are at most {APNS_MAX_LEN} hex characters; this one has "
                    f"{len(token)}. Tokens wrapped by FCM for iOS are not supported: register the "
                    "raw APNs token, or send FCM tokens as FcmDeviceToken.")
        if not _HEX.match(token) or len(token) < APNS_MIN_LEN or len(token) % 2:
            return (FailureReason.INVALID_DEVICE_TOKEN,
                    "an APNs device token is hexadecimal (the hex form of the deviceToken data the "
                    "app receives); this one is not. If it is an FCM token, send it as "
                    "FcmDeviceToken.")
    elif kind is TokenKind.FCM:
        if len(token) > FCM_MAX_LEN:
            return (FailureReason.DEVICE_TOKEN_TOO_LONG,
                    f"FCM registration tokens are at most {FCM_MAX_LEN} characters; this one has "
                    f"{len(token)}.")
        if _SPACE.search(token):
            return (FailureReason.INVALID_DEVICE_TOKEN,
                    "an FCM registration token has no spaces; this one does.")
    elif len(token) > WEBPUSH_ENDPOINT_MAX_LEN:
        return (FailureReason.DEVICE_TOKEN_TOO_LONG,
                f"the Web Push endpoint is longer than {WEBPUSH_ENDPOINT_MAX_LEN} characters.")
    return None


@dataclass(frozen=True, slots=True)
class PendingRequest:
    """A registration or cleanup request waiting to be processed: a stored row (tracked, or
    with a callback), or an untracked one riding in its job (``stored`` False)."""

    id: str
    org_id: str
    app_id: str
    api_token_id: str
    kind: str  # register | cleanup
    user_id: str
    token_kind: str | None = None
    token: str | None = None
    web_keys: dict[str, str] | None = None
    stored: bool = False
    tracked: bool = False
    callback_url: str | None = None
    callback_headers: dict[str, str] | None = None
    callback_signature: str | None = None

    @property
    def kind_of_token(self) -> TokenKind:
        """A registration's token kind (cleanups have none)."""
        if self.token_kind is None:
            raise ValueError(f"request {self.id} ({self.kind}) names no token kind")
        return TokenKind(self.token_kind)
