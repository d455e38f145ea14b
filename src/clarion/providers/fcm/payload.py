"""The FCM HTTP v1 request body for one device: CIJ's data keys, optional notification block.

Reference: firebase.google.com/docs/reference/fcm/rest/v1/projects.messages and "About FCM
messages". What CIJ apps expect (cij-push-contract §4): a *data* message whose keys are
``title``, ``body``, ``imageUrl``, ``link``, ``originalLink`` and ``trackingId`` plus the
message's custom data, every value a string (FCM rejects anything else in ``data``). An app may
also ask for a ``notification`` block (shown by the system when the app is in the background).

Pure: no I/O. The body is encoded once with ``orjson`` (the hot path sends it as is).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from clarion.domain.outcomes import Notification

# "Maximum payload for both message types is 4096 bytes" (About FCM messages).
MAX_PAYLOAD_BYTES = 4096
# AndroidConfig.ttl: "the maximum time to live supported is 4 weeks".
MAX_TTL_SECONDS = 28 * 24 * 3600  # 2,419,200
# Keys FCM refuses in `data` (Message.data: "must not contain reserved words ('from',
# 'message_type', or any word starting with 'google' or 'gcm')"); `notification` is reserved too.
RESERVED_DATA_KEYS = frozenset({"from", "message_type", "notification"})
RESERVED_DATA_PREFIXES = ("google", "gcm")
# The registration dry run (CIJ "invisible test push"): validate only, nothing is delivered.
DRY_RUN_DATA: Mapping[str, str] = {"dryRun": "true"}


class PayloadError(Exception):
    """The message cannot be sent as built; ``reason`` is FCM-style, ``detail`` for a person."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class BuiltMessage:
    body: bytes  # the whole request body: {"message": {...}, "validate_only": ...}
    payload_bytes: int  # what counts against MAX_PAYLOAD_BYTES
    note: str | None = None  # something adjusted on the way (e.g. a clamped TTL)


def as_fcm_string(value: Any) -> str | None:
    """FCM ``data`` values are strings only; ``None`` means "leave the key out"."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")


def _check_key(key: str) -> None:
    lowered = key.lower()
    if not key or lowered in RESERVED_DATA_KEYS or lowered.startswith(RESERVED_DATA_PREFIXES):
        raise PayloadError(
            "InvalidDataKey",
            f"the custom data key {key!r} is reserved by FCM (from, message_type, notification "
            "and keys starting with google or gcm are not allowed): rename it in the message",
        )


def data_block(notification: Notification) -> dict[str, str]:
    """CIJ's data keys, custom data first so the CIJ keys win on a clash."""
    data: dict[str, str] = {}
    for key, value in notification.data.items():
        text = as_fcm_string(value)
        if text is not None:
            _check_key(str(key))
            data[str(key)] = text
    data["title"] = notification.title
    data["body"] = notification.body
    if notification.image_url:
        data["imageUrl"] = notification.image_url
    if notification.link:
        data["link"] = notification.link
    if notification.original_link:
        data["originalLink"] = notification.original_link
    data["trackingId"] = notification.tracking_id  # always present; empty for a test send
    return data


def _android(notification: Notification) -> tuple[dict[str, str], str | None]:
    android = {"priority": "HIGH" if notification.priority == "high" else "NORMAL"}
    note = None
    ttl = notification.ttl_seconds
    if ttl is not None:
        if ttl > MAX_TTL_SECONDS:
            note = (f"TTL {ttl} s is over FCM's 4-week maximum: sent with "
                    f"{MAX_TTL_SECONDS} s instead")
            ttl = MAX_TTL_SECONDS
        # google.protobuf.Duration in JSON: seconds with an "s" suffix.
        android["ttl"] = f"{max(ttl, 0)}s"
    if notification.collapse_key:
        android["collapse_key"] = notification.collapse_key
    return android, note


def payload_size(message: Mapping[str, Any]) -> int:
    """Bytes counted against the 4096 limit: the compact JSON of what reaches the device
    (``data`` and ``notification``), not the token or the delivery options."""
    shown = {k: message[k] for k in ("data", "notification") if k in message}
    return len(orjson.dumps(shown))


def build_message(token: str, notification: Notification, *, notification_block: bool,
                  dry_run: bool) -> BuiltMessage:
    """The request body for ``messages:send``; raises ``PayloadError`` when FCM would refuse it.

    A dry run is ``validate_only: true`` with a minimal data message: FCM checks the token and
    the credentials and delivers nothing.
    """
    if dry_run:
        message: dict[str, Any] = {"token": token, "data": dict(DRY_RUN_DATA)}
        return BuiltMessage(orjson.dumps({"message": message, "validate_only": True}),
                            payload_size(message))
    message = {"token": token, "data": data_block(notification)}
    android, note = _android(notification)
    message["android"] = android
    if notification_block:
        block = {"title": notification.title, "body": notification.body}
        if notification.image_url:
            block["image"] = notification.image_url
        message["notification"] = block
    size = payload_size(message)
    if size > MAX_PAYLOAD_BYTES:
        raise PayloadError(
            "MessageTooBig",
            f"the FCM payload is {size} bytes, {size - MAX_PAYLOAD_BYTES} over FCM's "
            f"{MAX_PAYLOAD_BYTES}-byte limit: shorten the title, body, links or custom data",
        )
    return BuiltMessage(orjson.dumps({"message": message, "validate_only": False}), size, note)
