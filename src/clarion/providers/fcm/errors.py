"""FCM HTTP v1 answers → ``Outcome`` (pure: no I/O).

Error bodies follow google.rpc.Status (firebase.google.com/docs/reference/fcm/rest/v1/
ErrorCode): ``{"error": {"code", "message", "status", "details": [{"@type":
"type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": ...}]}}``. The FCM
``errorCode`` is read first, then ``error.status`` (what firebase-admin does too).

==============================  ==================  ========================================
answer                          outcome             why
==============================  ==================  ========================================
200                             ACCEPTED            provider_id = the returned ``name``
UNREGISTERED (404)              INVALID_TOKEN       app uninstalled / token expired: prune
INVALID_ARGUMENT (400), message INVALID_TOKEN       malformed token: prune
  about the registration token
INVALID_ARGUMENT (400), other   REJECTED            a payload error: never retry
SENDER_ID_MISMATCH (403)        MISMATCH            token of another Firebase project
QUOTA_EXCEEDED (429),           RETRY_LATER         honour ``Retry-After`` (seconds or date)
  UNAVAILABLE (503), INTERNAL
  (500); bare 429/500/502/503/
  504 (e.g. a proxy's HTML page)
THIRD_PARTY_AUTH_ERROR (401)    CREDENTIAL_ERROR    APNs credentials in Firebase are wrong
UNAUTHENTICATED (401)           CREDENTIAL_ERROR    (after one token refresh, see client.py)
PERMISSION_DENIED (403)         CREDENTIAL_ERROR    service account not allowed for project
anything else                   REJECTED            the status (and a known code) recorded
==============================  ==================  ========================================

What reaches the tenant (an outcome's ``reason`` and ``detail``) is Clarion's sentence plus
vocabulary read from documented fields: a known FCM ``errorCode`` or ``google.rpc.Code`` name,
and the field path of an INVALID_ARGUMENT (``message.android.ttl``). ``error.message`` and
other free text are read to choose the sentence (a bad token, a message too big) and never
copied: a server can write anything there.
"""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from clarion.domain.outcomes import Outcome, OutcomeKind

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
# "The registration token is not a valid FCM registration token" (and older wordings such as
# "Invalid registration token"): INVALID_ARGUMENT is shared with payload errors, so only the
# message (or a field violation on message.token) tells a bad token apart.
_BAD_TOKEN_TEXT = re.compile(r"registration[ _]token.*(not a valid|invalid)|"
                             r"invalid.*registration[ _]token", re.IGNORECASE)
_RETRYABLE_HTTP = frozenset({429, 500, 502, 503, 504})
# The codes shown as they are: FCM's ErrorCode enum and google.rpc.Code names.
KNOWN_CODES = frozenset({
    "UNSPECIFIED_ERROR", "INVALID_ARGUMENT", "UNREGISTERED", "SENDER_ID_MISMATCH",
    "QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL", "THIRD_PARTY_AUTH_ERROR", "APNS_AUTH_ERROR",
    "CANCELLED", "UNKNOWN", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "DATA_LOSS", "UNAUTHENTICATED"})
# A field path of the FCM message (message.data[0].value): vocabulary, shown when well formed.
_FIELD_PATH = re.compile(r"message(\.[A-Za-z_][A-Za-z0-9_]{0,63}|\[\d{1,4}\]){0,8}")
_INVALID_VALUE_AT = re.compile(r"Invalid value at '([^']{1,120})'")
_TOO_BIG = re.compile(r"too (big|large)", re.IGNORECASE)

_DETAILS: Mapping[str, tuple[OutcomeKind, str]] = {
    "UNREGISTERED": (OutcomeKind.INVALID_TOKEN,
                     "FCM answered UNREGISTERED: the app was uninstalled or the token expired; "
                     "the device is removed and the app registers its new token when it runs"),
    "SENDER_ID_MISMATCH": (OutcomeKind.MISMATCH,
                           "FCM answered SENDER_ID_MISMATCH: the token belongs to another "
                           "Firebase project: register it with the app whose service account "
                           "is for that project"),
    "QUOTA_EXCEEDED": (OutcomeKind.RETRY_LATER,
                       "FCM answered QUOTA_EXCEEDED: the project's sending quota (or this "
                       "device's message rate) is exhausted"),
    "UNAVAILABLE": (OutcomeKind.RETRY_LATER,
                    "FCM answered UNAVAILABLE: the service is overloaded"),
    "INTERNAL": (OutcomeKind.RETRY_LATER,
                 "FCM answered INTERNAL: an error inside FCM"),
    "THIRD_PARTY_AUTH_ERROR": (OutcomeKind.CREDENTIAL_ERROR,
                               "FCM answered THIRD_PARTY_AUTH_ERROR: the APNs credentials "
                               "configured in Firebase are wrong: upload a valid APNs key or "
                               "certificate in the Firebase console (Project settings → Cloud "
                               "Messaging → Apple app configuration)"),
    "APNS_AUTH_ERROR": (OutcomeKind.CREDENTIAL_ERROR,
                        "FCM answered APNS_AUTH_ERROR: the APNs credentials configured in "
                        "Firebase are wrong: upload a valid APNs key in the Firebase console"),
    "UNAUTHENTICATED": (OutcomeKind.CREDENTIAL_ERROR,
                        "FCM refused the service account's access token even after a fresh "
                        "one was fetched: check that the service account key is current and "
                        "that the clock of this server is right"),
    "PERMISSION_DENIED": (OutcomeKind.CREDENTIAL_ERROR,
                          "FCM answered PERMISSION_DENIED: the service account may not send "
                          "for this project (a key of another project, a missing 'Firebase "
                          "Cloud Messaging API Admin' role, or the FCM API disabled): upload "
                          "the service account key of this app's Firebase project"),
}


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` is delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - now).total_seconds())
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _error_dict(body: bytes) -> Mapping[str, Any] | None:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else None


def _fcm_code(error: Mapping[str, Any]) -> str | None:
    details = error.get("details")
    for item in details if isinstance(details, list) else ():
        if isinstance(item, dict) and item.get("@type") == FCM_ERROR_TYPE:
            code = item.get("errorCode")
            if isinstance(code, str) and code:
                return code
    return None


def _known(code: Any) -> str | None:
    return code if isinstance(code, str) and code in KNOWN_CODES else None


def _field_paths(error: Mapping[str, Any], message: str) -> list[str]:
    """The message fields an INVALID_ARGUMENT names (BadRequest fieldViolations, or Google's
    "Invalid value at '<path>'"), kept only when they are well-formed paths."""
    found: list[str] = []
    details = error.get("details")
    for item in details if isinstance(details, list) else ():
        if isinstance(item, dict) and item.get("@type") == BAD_REQUEST_TYPE:
            for v in item.get("fieldViolations") or ():
                if isinstance(v, dict) and isinstance(v.get("field"), str):
                    found.append(v["field"])
    found += _INVALID_VALUE_AT.findall(message)
    return [f for f in dict.fromkeys(found) if _FIELD_PATH.fullmatch(f)][:3]


def _token_violation(error: Mapping[str, Any]) -> bool:
    details = error.get("details")
    for item in details if isinstance(details, list) else ():
        if isinstance(item, dict) and item.get("@type") == BAD_REQUEST_TYPE:
            for v in item.get("fieldViolations") or ():
                if isinstance(v, dict) and v.get("field") == "message.token":
                    return True
    return False


def error_code(status: int, body: bytes) -> str | None:
    """The FCM ``errorCode`` if present, else ``error.status``; ``None`` for a non-Google body."""
    error = _error_dict(body)
    if error is None:
        return None
    return _known(_fcm_code(error)) or _known(error.get("status"))


def needs_token_refresh(status: int, body: bytes) -> bool:
    """A 401 about *our* access token (not THIRD_PARTY_AUTH_ERROR, which is about APNs): fetch a
    fresh token once and resend."""
    if status != 401:
        return False
    return error_code(status, body) not in ("THIRD_PARTY_AUTH_ERROR", "APNS_AUTH_ERROR")


def _answer(status: int, body: bytes) -> str:
    """An unexpected answer in Clarion's words: its status, never its text."""
    return f"HTTP {status}" + ("" if body.strip() else " with an empty body")


def classify(delivery_id: str, status: int, body: bytes, *, retry_after: str | None,
             now: datetime) -> Outcome:
    """One FCM answer → one outcome."""
    if status == 200:
        try:
            parsed = orjson.loads(body)
            name = parsed.get("name") if isinstance(parsed, dict) else None
        except orjson.JSONDecodeError:
            name = None
        return Outcome(delivery_id, OutcomeKind.ACCEPTED,
                       provider_id=name if isinstance(name, str) else None)
    error = _error_dict(body)
    message = ""
    code: str | None = None
    if error is not None:
        raw_message = error.get("message")
        message = raw_message if isinstance(raw_message, str) else ""
        code = _known(_fcm_code(error)) or _known(error.get("status"))
    if code is None and status == 401:
        code = "UNAUTHENTICATED"  # a bare 401 (no Google error body): still our credentials
    if code == "INVALID_ARGUMENT":
        if _BAD_TOKEN_TEXT.search(message) or (error is not None and _token_violation(error)):
            return Outcome(delivery_id, OutcomeKind.INVALID_TOKEN, reason="INVALID_ARGUMENT",
                           detail="FCM answered INVALID_ARGUMENT about the registration token: "
                                  "the stored token is not an FCM registration token; the "
                                  "device is removed")
        fields = _field_paths(error or {}, message)
        what = (f" (the field{'s' if len(fields) > 1 else ''} {', '.join(fields)})"
                if fields else "")
        if _TOO_BIG.search(message):
            what = " as too big: shorten the title, body or custom data"
        return Outcome(delivery_id, OutcomeKind.REJECTED, reason="INVALID_ARGUMENT",
                       detail=f"FCM answered {status} INVALID_ARGUMENT: it refused the message "
                              f"as invalid{what}; fix the message content (it is not retried)")
    if code is not None and code in _DETAILS:
        kind, detail = _DETAILS[code]
        wait = parse_retry_after(retry_after, now) if kind is OutcomeKind.RETRY_LATER else None
        return Outcome(delivery_id, kind, reason=code, detail=detail, retry_after_seconds=wait)
    if status in _RETRYABLE_HTTP:
        return Outcome(delivery_id, OutcomeKind.RETRY_LATER, reason=code or str(status),
                       detail=f"FCM is unavailable ({_answer(status, body)}"
                              f"{' ' + code if code else ''})",
                       retry_after_seconds=parse_retry_after(retry_after, now))
    return Outcome(delivery_id, OutcomeKind.REJECTED, reason=code or str(status),
                   detail=f"FCM gave an unexpected answer ({_answer(status, body)}"
                          f"{' ' + code if code else ''}); this send is not retried")


def connection_outcome(delivery_id: str, *, timeout: bool, error: str,
                       host: str = "fcm.googleapis.com") -> Outcome:
    """No answer: retry later. A timeout may hide a message FCM accepted (say so)."""
    if timeout:
        return Outcome(delivery_id, OutcomeKind.RETRY_LATER, reason="Timeout",
                       detail="FCM did not answer in time (FCM may have accepted it, so a "
                              "device sent it again could see it twice)")
    return Outcome(delivery_id, OutcomeKind.RETRY_LATER, reason="ConnectionError",
                   detail=f"could not reach FCM ({error}): check this server's network "
                          f"access to {host}")
