"""What the emulator checks in a ``messages:send`` body, and FCM's error bodies.

Reference: firebase.google.com/docs/reference/fcm/rest/v1/projects.messages (Message,
AndroidConfig) and .../ErrorCode. Google's JSON parser accepts lowerCamelCase and snake_case
field names and refuses unknown ones; ``data`` maps string to string; ``android.ttl`` is a
``google.protobuf.Duration`` ("3.5s") of at most 4 weeks; ``android.priority`` is NORMAL or
HIGH; a message has exactly one target (token, fid, topic or condition); the payload is at most
4096 bytes. Written independently of ``clarion.providers.fcm`` on purpose: the emulator is the
sender's test peer and must not share its mistakes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
MAX_PAYLOAD = 4096
MAX_TTL = 2_419_200
BAD_TOKEN_MESSAGE = "The registration token is not a valid FCM registration token"

_TOP = {"message", "validate_only", "validateOnly"}
_MESSAGE = {"name", "data", "notification", "android", "webpush", "apns", "fcm_options",
            "fcmOptions", "token", "topic", "condition", "fid"}
_NOTIFICATION = {"title", "body", "image"}
_ANDROID = {"collapse_key", "collapseKey", "priority", "ttl", "restricted_package_name",
            "restrictedPackageName", "data", "notification", "fcm_options", "fcmOptions",
            "direct_boot_ok", "directBootOk", "bandwidth_constrained_ok",
            "bandwidthConstrainedOk", "restricted_satellite_ok", "restrictedSatelliteOk"}
# "fid" (a Firebase installation ID) is the newest target; firebase-admin 7 prefers it.
_TARGETS = ("token", "fid", "topic", "condition")
# Enum names are matched without case: firebase-admin sends "high"/"normal" and FCM takes it.
_PRIORITIES = {"NORMAL", "HIGH", 0, 1}
_DURATION = re.compile(r"-?\d+(\.\d{1,9})?s")
_RESERVED = {"from", "message_type", "notification"}


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    body: dict[str, Any]


def google_error(code: int, status: str, message: str, *, fcm_code: str | None = None,
                 details: list[dict[str, Any]] | None = None) -> Refusal:
    """A google.rpc.Status body as FCM sends it."""
    items = list(details or [])
    if fcm_code is not None:
        items.insert(0, {"@type": FCM_ERROR, "errorCode": fcm_code})
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if items:
        error["details"] = items
    return Refusal(code, {"error": error})


def invalid(message: str, field: str | None = None, *, fcm: bool = False) -> Refusal:
    details = ([{"@type": BAD_REQUEST, "fieldViolations": [{"field": field,
                                                             "description": message}]}]
               if field else None)
    return google_error(400, "INVALID_ARGUMENT", message,
                        fcm_code="INVALID_ARGUMENT" if fcm else None, details=details)


def _unknown(obj: Mapping[str, Any], allowed: set[str], where: str) -> Refusal | None:
    for name in obj:
        if name not in allowed:
            text = (f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': "
                    "Cannot find field.")
            return invalid(text, where)
    return None


def _string_map(value: Any, where: str) -> Refusal | None:
    if not isinstance(value, dict):
        return invalid(f"Invalid value at '{where}' (type.googleapis.com/"
                       f"google.protobuf.Struct), {json.dumps(value)}", where)
    for index, (key, item) in enumerate(value.items()):
        if not isinstance(item, str):
            field = f"{where}[{index}].value"
            return invalid(f"Invalid value at '{field}' (TYPE_STRING), {json.dumps(item)}",
                           field)
        lowered = key.lower()
        if lowered in _RESERVED or lowered.startswith(("google", "gcm")):
            return invalid(f"Invalid data payload key: {key}", f"{where}[{index}].key", fcm=True)
    return None


def _android(android: Any) -> Refusal | None:
    where = "message.android"
    if not isinstance(android, dict):
        return invalid(f"Invalid value at '{where}', {json.dumps(android)}", where)
    refusal = _unknown(android, _ANDROID, where)
    priority = android.get("priority", "NORMAL")
    if refusal is None and (priority.upper() if isinstance(priority, str) else priority
                            ) not in _PRIORITIES:
        field = f"{where}.priority"
        refusal = invalid(f"Invalid value at '{field}' (type.googleapis.com/google.firebase."
                          f"fcm.v1.AndroidMessagePriority), {json.dumps(android['priority'])}",
                          field)
    if refusal is None and "ttl" in android:
        ttl = android["ttl"]
        field = f"{where}.ttl"
        if not isinstance(ttl, str) or not _DURATION.fullmatch(ttl):
            refusal = invalid(f"Invalid value at '{field}' (type.googleapis.com/"
                              f"google.protobuf.Duration), {json.dumps(ttl)}", field)
        elif not 0 <= float(ttl[:-1]) <= MAX_TTL:
            refusal = invalid(f"Invalid value at '{field}': the time to live must be between "
                              f"0s and {MAX_TTL}s (4 weeks), got {ttl}", field, fcm=True)
    if refusal is None and "data" in android:
        refusal = _string_map(android["data"], f"{where}.data")
    return refusal


def payload_size(message: Mapping[str, Any]) -> int:
    """The compact JSON of what reaches the device: ``data`` and ``notification``."""
    shown = {k: message[k] for k in ("data", "notification") if k in message}
    return len(json.dumps(shown, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def check_body(body: Any) -> tuple[dict[str, Any], bool] | Refusal:
    """(message, validate_only) or why FCM refuses the request."""
    if not isinstance(body, dict):
        return invalid("Invalid JSON payload received. Expected an object.")
    refusal = _unknown(body, _TOP, "")
    if refusal is not None:
        return refusal
    validate_only = body.get("validate_only", body.get("validateOnly", False))
    if not isinstance(validate_only, bool):
        return invalid(f"Invalid value at 'validate_only' (TYPE_BOOL), "
                       f"{json.dumps(validate_only)}", "validate_only")
    message = body.get("message")
    if not isinstance(message, dict):
        return invalid("Request contains an invalid argument: 'message' is required.",
                       "message")
    refusal = _unknown(message, _MESSAGE, "message")
    if refusal is not None:
        return refusal
    targets = [t for t in _TARGETS if t in message]
    if not targets:
        return invalid("Recipient of the message is not set.", "message", fcm=True)
    if len(targets) > 1:
        return invalid(f"Invalid value at 'message' (oneof), oneof field 'target' is already "
                       f"set. Cannot set '{targets[1]}'", "message")
    if not isinstance(message[targets[0]], str):
        field = f"message.{targets[0]}"
        return invalid(f"Invalid value at '{field}' (TYPE_STRING), "
                       f"{json.dumps(message[targets[0]])}", field)
    if "data" in message and (refusal := _string_map(message["data"], "message.data")):
        return refusal
    if "notification" in message:
        block = message["notification"]
        if not isinstance(block, dict):
            return invalid("Invalid value at 'message.notification'", "message.notification")
        if refusal := _unknown(block, _NOTIFICATION, "message.notification"):
            return refusal
        for key, value in block.items():
            if not isinstance(value, str):
                field = f"message.notification.{key}"
                return invalid(f"Invalid value at '{field}' (TYPE_STRING), {json.dumps(value)}",
                               field)
    if "android" in message and (refusal := _android(message["android"])):
        return refusal
    size = payload_size(message)
    if size > MAX_PAYLOAD:
        return invalid(f"Message is too big: the payload is {size} bytes, over the "
                       f"{MAX_PAYLOAD}-byte limit by {size - MAX_PAYLOAD}.", fcm=True)
    return message, validate_only


def malformed_token(token: str) -> bool:
    """Fault rule: empty, whitespace or non-ASCII, or the ``bad`` prefix."""
    return (not token or token.startswith("bad")
            or any(not ("!" <= ch <= "~") for ch in token))
