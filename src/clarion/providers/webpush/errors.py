"""What a push service's answer means for one send (RFC 8030 §5-§8, RFC 8292 §4).

Status alone is ambiguous for authentication failures, so the body is read too:

=================  ==========================================================================
201 / 200 / 202    ACCEPTED; ``provider_id`` is the message's ``Location`` (RFC 8030 §5)
404 / 410          INVALID_TOKEN: the subscription expired or was removed: prune it
413                REJECTED ``PayloadTooLarge``: the body is over what the service takes
429                RETRY_LATER, honouring ``Retry-After`` (RFC 8030 §8.4)
408, 5xx           RETRY_LATER (Retry-After honoured when sent)
400                a VAPID key-mismatch body → MISMATCH; a refused-JWT body → CREDENTIAL_ERROR;
                   anything else → REJECTED with the body (a bad header or encoding)
401                a key-mismatch body → MISMATCH; otherwise CREDENTIAL_ERROR
403                a refused-JWT body → CREDENTIAL_ERROR; otherwise MISMATCH
other              REJECTED with the raw answer
=================  ==========================================================================

Only Clarion's sentences reach the tenant (an outcome's ``reason`` and ``detail``), with the
vocabulary a service documents: Apple's ``reason`` when it is one Apple documents, Mozilla
autopush's numeric ``errno``. The body's free text is read to tell a key mismatch from a refused
JWT (below) and never copied: a push service is chosen by whoever made the subscription, so it
can write anything there.

Why 401/403 are split like this: a push service binds each subscription to the
``applicationServerKey`` it was made with (RFC 8292 §3.2). When the JWT itself is refused (bad
signature, audience, expiry, subject) every send of the app fails: that is the app's
credentials (CREDENTIAL_ERROR pauses the app). When only the key differs from the one this
subscription was made with, only that subscription is affected (the site subscribed it with
an older key, or another app's key): MISMATCH keeps the app running and says why. The services
say which it is in words: Mozilla autopush answers 401 ``"VAPID public key mismatch"`` for a
key mismatch and 401 ``"Invalid VAPID ..."`` for a bad JWT; FCM answers 403 "the VAPID
credentials in the authorization header do not correspond to the credentials used to create
the subscriptions"; Apple answers ``{"reason": "VapidPkHashMismatch"}`` for a mismatch and 403
``{"reason": "BadJwtToken"}`` for a refused JWT. Without such words a 401 means the JWT
(Mozilla's choice) and a 403 a mismatch (FCM's and RFC 8292 §4.2's).
"""

from __future__ import annotations

import email.utils
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime

from clarion.domain.outcomes import Outcome, OutcomeKind

# Apple's documented web push reasons ("Sending web push notifications in web apps and
# browsers", response codes): shown as the outcome's reason.
APPLE_REASONS = frozenset({
    "BadDeviceToken", "BadExpirationDate", "BadJwtToken", "BadMessageId", "BadPriority",
    "BadSubject", "BadWebPushTopic", "ExpiredJwtToken", "ExpiredToken", "InternalServerError",
    "MissingTopic", "PayloadTooLarge", "ServiceUnavailable", "TooManyRequests", "Unregistered",
    "VapidPkHashMismatch"})
# Mozilla autopush's documented errno values (autopush "Error Codes").
AUTOPUSH_ERRNOS = frozenset({102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114,
                             115, 124, 201, 202, 203, 999})
_MISMATCH_WORDS = (
    "vapid public key mismatch",  # Mozilla autopush (401, errno 109)
    "do not correspond to the credentials used to create",  # FCM (403)
    "does not correspond to the sender",  # FCM, older wording
    "vapidpkhashmismatch",  # Apple
    "unauthorizedregistration",  # FCM legacy: subscription made for another sender
)
_JWT_WORDS = (
    "badjwttoken",  # Apple (403)
    "expiredjwttoken",  # Apple
    "invalid jwt",  # FCM: "permission denied: invalid JWT provided"
    "invalid vapid",  # Mozilla: "Invalid VAPID token/audience/expiry/public key"
    "missing vapid",  # Mozilla: "Missing VAPID token/public key"
    "vapid token expiration is too long",  # Mozilla
    "unknown auth scheme",  # Mozilla
    "badsubject",
)
_VAPID_FIX = (
    "Check the app's Web Push credentials: vapid_subject must be a real mailto: address or "
    "https: URL, and the VAPID key pair must be the one the site gives browsers as "
    "applicationServerKey.")
_CLOCK_WORDS = ("expir", "too long")  # Mozilla: "Invalid VAPID expiry", "... too long"
_CLOCK_HINT = ("the push service judged the JWT's expiry wrong: check this server's clock "
               "(NTP) against real time. ")
_MISMATCH_DETAIL = (
    "the push service refused the VAPID key for this subscription (a key mismatch): the "
    "browser subscribed with "
    "another applicationServerKey than this app's VAPID public key (an older key, or another "
    "app's). The subscription keeps failing until the site subscribes it again with this app's "
    "public key.")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as delta-seconds or an HTTP-date (RFC 9110 §10.2.3); None if unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _reason_and_said(status: int, body: str) -> tuple[str, str]:
    """The outcome's reason (a documented Apple reason, else the status) and what may be said
    of the body: its documented vocabulary only, never its text."""
    try:
        parsed = json.loads(body) if body.strip().startswith("{") else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        return str(status), ""
    reason = parsed.get("reason")
    if isinstance(reason, str) and reason in APPLE_REASONS:
        return reason, f" ({reason})"
    errno = parsed.get("errno")
    if isinstance(errno, int) and not isinstance(errno, bool) and errno in AUTOPUSH_ERRNOS:
        return str(status), f" (autopush errno {errno})"
    return str(status), ""


def _has(words: tuple[str, ...], body: str) -> bool:
    low = body.lower()
    return any(w in low for w in words)


def classify(delivery_id: str, status: int, *, body: str = "",
             headers: Mapping[str, str] | None = None, now: datetime | None = None) -> Outcome:
    """One push service answer → one outcome (see the module docstring for the table)."""
    headers = headers or {}
    if status in (200, 201, 202):
        return Outcome(delivery_id, OutcomeKind.ACCEPTED, provider_id=headers.get("Location"))
    reason, said = _reason_and_said(status, body)
    if status in (404, 410):
        return Outcome(delivery_id, OutcomeKind.INVALID_TOKEN, reason=reason, detail=(
            f"the push service answered {status}: the subscription expired or the browser "
            f"unsubscribed{said}. It is removed; the site subscribes the browser again when the "
            "person next visits it."))
    if status == 413:
        return Outcome(delivery_id, OutcomeKind.REJECTED, reason="PayloadTooLarge", detail=(
            f"the push service answered 413: the encrypted message is larger than it takes"
            f"{said} (push services guarantee 4096 bytes). Shorten the title, body or custom "
            "data."))
    if status == 429 or status == 408 or 500 <= status <= 599:
        retry = parse_retry_after(headers.get("Retry-After"), now=now)
        what = ("is rate limiting this app" if status == 429
                else "could not take the message now")
        return Outcome(delivery_id, OutcomeKind.RETRY_LATER, reason=reason,
                       retry_after_seconds=retry,
                       detail=f"the push service answered {status}: it {what}{said}.")
    mismatch = _has(_MISMATCH_WORDS, body)
    refused_jwt = _has(_JWT_WORDS, body)
    if mismatch and status in (400, 401, 403):
        return Outcome(delivery_id, OutcomeKind.MISMATCH, reason=reason,
                       detail=f"{_MISMATCH_DETAIL}{said}")
    if status == 401 or (status in (400, 403) and refused_jwt):
        hint = _CLOCK_HINT if _has(_CLOCK_WORDS, body) else ""
        return Outcome(delivery_id, OutcomeKind.CREDENTIAL_ERROR, reason=reason, detail=(
            f"the push service refused the VAPID signature ({status}){said}. {hint}"
            f"{_VAPID_FIX}"))
    if status == 403:
        return Outcome(delivery_id, OutcomeKind.MISMATCH, reason=reason,
                       detail=f"{_MISMATCH_DETAIL}{said}")
    if 300 <= status < 400:
        return Outcome(delivery_id, OutcomeKind.REJECTED, reason=reason, detail=(
            f"the push service answered {status}, a redirect, which Clarion does not follow; "
            "the message is not retried."))
    return Outcome(delivery_id, OutcomeKind.REJECTED, reason=reason, detail=(
        f"the push service refused this message with {status}{said}; it is not retried."))


def connection_failure(delivery_id: str, reason: str, message: str) -> Outcome:
    """No answer was read: retry later (the service may or may not have taken the message).
    ``message`` says what happened in Clarion's words (``providers.outbound.describe``)."""
    what = {"Timeout": "no answer came in time",
            "TLSError": "the TLS handshake failed (set CLARION_CA_FILE if the push service "
                        "uses a private CA)"}.get(reason, "the connection failed")
    return Outcome(delivery_id, OutcomeKind.RETRY_LATER, reason=reason,
                   detail=f"{what}: {message}.")
