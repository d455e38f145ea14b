"""APNs answers → ``Outcome``: the classification table, in one place.

Source: Apple, "Handling notification responses from APNs" (status codes and ``reason``
strings) and the shared reference ``providers.md``. Every documented reason has a row below
with the kind it means for Clarion and a sentence naming the cause and the fix.

Unknown answers: a 5xx or 429 without a known reason is treated as passing (HTTP semantics:
a proxy or load balancer in front of APNs answers like that and the send has not happened);
anything else unknown is a permanent rejection of that one send. What reaches the tenant is the
status and, when it is one Apple documents, the ``reason``: an unknown reason or body is logged
for the operator (a warning) and never copied into the outcome (a server can write anything
there).
"""

from __future__ import annotations

import logging
import time
from email.utils import parsedate_to_datetime

import orjson

from clarion.domain.outcomes import Outcome, OutcomeKind

log = logging.getLogger(__name__)

INVALID = OutcomeKind.INVALID_TOKEN
MISMATCH = OutcomeKind.MISMATCH
RETRY = OutcomeKind.RETRY_LATER
REJECTED = OutcomeKind.REJECTED
CREDENTIALS = OutcomeKind.CREDENTIAL_ERROR

# Suggested waits when APNs gives no Retry-After (it usually does not).
DEFAULT_RETRY_SECONDS: dict[str, float] = {
    "TooManyRequests": 5.0,  # the same device token too often: back off that token
    "InternalServerError": 1.0,
    "ServiceUnavailable": 5.0,
    "Shutdown": 1.0,  # this server is going away: reconnecting is enough
    "TooManyProviderTokenUpdates": 60.0,
    "IdleTimeout": 1.0,
    "ConnectionError": 1.0,
    "Timeout": 5.0,
    "GOAWAY": 1.0,
}

_FIX_KEY = ("check the Key ID, Team ID and .p8 signing key of the app's iOS configuration "
            "(Apple Developer → Keys) and save them again")
_FIX_CERT = ("upload a valid Apple Push Notification service certificate (.p12) for this app, "
             "or switch the app to token auth with a .p8 key")

# reason → (kind, explanation). ``{env}`` is the app's environment (sandbox/production) and
# ``{other}`` the other one.
_TABLE: dict[str, tuple[OutcomeKind, str]] = {
    # 410: dead token, prune (Apple delays this on purpose: it is not a real-time signal).
    "Unregistered": (INVALID, "the device token is no longer active for this app (the app was "
                     "uninstalled or the user turned notifications off): the token is removed"),
    "ExpiredToken": (INVALID, "the device token has expired: the app must register again"),
    # 400: token / app mismatch: keep the token, say why.
    "BadDeviceToken": (MISMATCH, "the token is not valid for the {env} environment the app is "
                       "configured for: it is probably a {other} token (a build signed for "
                       "{other}) or belongs to another app; register a token from a build "
                       "that matches, or switch the app's environment to {other}"),
    "DeviceTokenNotForTopic": (MISMATCH, "the device token belongs to another app than the "
                               "bundle id {topic}: check the app's bundle id, or register "
                               "tokens from the app with that bundle id"),
    # Passing conditions: retry later with backoff. The words say what happened; whether it
    # is tried again is the caller's to say (attempts and time to live may be used up).
    "TooManyRequests": (RETRY, "too many notifications to this device in a short time"),
    "InternalServerError": (RETRY, "APNs had an internal error"),
    "ServiceUnavailable": (RETRY, "APNs is unavailable"),
    "Shutdown": (RETRY, "the APNs server was shutting down"),
    "TooManyProviderTokenUpdates": (RETRY, "the provider token (JWT) was renewed too often "
                                    "(more than once in 20 minutes); if it repeats, make sure "
                                    "only one Clarion process per key renews tokens"),
    "IdleTimeout": (RETRY, "the connection was idle too long"),
    # Credential problems: stop the app's sends and flag the configuration.
    "InvalidProviderToken": (CREDENTIALS, "APNs does not accept the provider token (JWT): "
                             "the Key ID, Team ID or signing key is wrong, or the key was "
                             "revoked: " + _FIX_KEY),
    "ExpiredProviderToken": (CREDENTIALS, "APNs says the provider token (JWT) is older than "
                             "an hour even after renewing it: check this server's clock "
                             "(NTP), then " + _FIX_KEY),
    "MissingProviderToken": (CREDENTIALS, "APNs got neither a provider token nor a client "
                             "certificate: configure token auth (.p8) or certificate auth "
                             "(.p12) for the app"),
    "UnrelatedKeyIdInToken": (CREDENTIALS, "the Key ID does not belong to the Team ID: "
                              + _FIX_KEY),
    "BadEnvironmentKeyInToken": (CREDENTIALS, "the signing key is restricted to the other "
                                 "environment than {env}: use a key enabled for {env} or "
                                 "switch the app's environment"),
    "BadEnvironmentKeyIdInToken": (CREDENTIALS, "the signing key is restricted to the other "
                                   "environment than {env}: use a key enabled for {env} or "
                                   "switch the app's environment"),
    "BadCertificate": (CREDENTIALS, "APNs refused the client certificate (expired, revoked or "
                       "not a push certificate): " + _FIX_CERT),
    "BadCertificateEnvironment": (CREDENTIALS, "the client certificate is for the {other} "
                                  "environment but the app is configured for {env}: upload "
                                  "the {env} certificate or switch the app's environment"),
    # Never retry: this one send is wrong.
    "PayloadTooLarge": (REJECTED, "the payload is over APNs' 4096-byte limit: shorten the "
                        "title/body or data"),
    "PayloadEmpty": (REJECTED, "the payload was empty"),
    "BadTopic": (REJECTED, "the apns-topic {topic} is not valid: check the app's bundle id"),
    "MissingTopic": (REJECTED, "the apns-topic header was missing: set the app's bundle id"),
    "TopicDisallowed": (REJECTED, "pushing to the topic {topic} is not allowed for these "
                        "credentials: the key's team or the certificate does not cover this "
                        "bundle id"),
    "BadPriority": (REJECTED, "the apns-priority value was refused (background pushes must "
                    "use 5)"),
    "BadExpirationDate": (REJECTED, "the apns-expiration value was refused: check the "
                          "message's time to live"),
    "BadCollapseId": (REJECTED, "the collapse id is longer than 64 bytes: use a shorter "
                      "collapse key"),
    "BadMessageId": (REJECTED, "the apns-id header is not a UUID"),
    "InvalidPushType": (REJECTED, "the apns-push-type does not match the payload"),
    "MissingPushType": (REJECTED, "the apns-push-type header was missing"),
    "DuplicateHeaders": (REJECTED, "a header was sent twice"),
    "MissingDeviceToken": (REJECTED, "the device token was missing from the request path"),
    "BadPath": (REJECTED, "the request path was refused: APNs_URL may point at a server that "
                "is not APNs"),
    "MethodNotAllowed": (REJECTED, "the request method was refused (APNs only takes POST)"),
    "Forbidden": (REJECTED, "APNs does not allow this action for these credentials"),
}

_OTHER = {"sandbox": "production", "production": "sandbox"}


def reason_kind(reason: str) -> OutcomeKind | None:
    """The kind a documented APNs reason means, or None if the reason is not documented."""
    row = _TABLE.get(reason)
    return row[0] if row else None


def known_reasons() -> frozenset[str]:
    return frozenset(_TABLE)


def parse_retry_after(value: bytes | str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date; RFC 9110
    §10.2.3), or None when absent or unreadable."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _reason_of(body: bytes) -> str | None:
    if not body:
        return None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(parsed, dict):
        reason = parsed.get("reason")
        if isinstance(reason, str) and reason:
            return reason
    return None


def classify(
    delivery_id: str,
    status: int,
    body: bytes,
    *,
    environment: str = "production",
    topic: str = "",
    apns_id: str | None = None,
    retry_after: bytes | str | None = None,
) -> Outcome:
    """One APNs HTTP answer as an ``Outcome``."""
    if status == 200:
        return Outcome(delivery_id, OutcomeKind.ACCEPTED, provider_id=apns_id)
    reason = _reason_of(body)
    row = _TABLE.get(reason) if reason else None
    wait = parse_retry_after(retry_after)
    if row is None:
        if body:
            log.warning("APNs answered HTTP %d with an unknown reason %r (apns-id %s)", status,
                        (reason or body[:200].decode("utf-8", "replace"))[:200], apns_id)
        if status >= 500 or status == 429:
            return Outcome(delivery_id, RETRY, reason=str(status), provider_id=apns_id,
                           detail=f"APNs answered HTTP {status}",
                           retry_after_seconds=wait if wait is not None else 5.0)
        return Outcome(delivery_id, REJECTED, reason=str(status), provider_id=apns_id,
                       detail=f"APNs answered HTTP {status} with a reason Clarion does not "
                       "know (the operator's log has it; look it up in Apple's 'Handling "
                       "notification responses from APNs'); this send is not retried")
    kind, text = row
    env = environment if environment in _OTHER else "production"
    sentence = text.format(env=env, other=_OTHER[env], topic=topic or "(none)")
    detail = f"APNs answered {reason}: {sentence}"
    if kind is RETRY and wait is None:
        wait = DEFAULT_RETRY_SECONDS.get(reason or "", 5.0)
    if kind is not RETRY:
        wait = None
    return Outcome(delivery_id, kind, reason=reason, detail=detail, provider_id=apns_id,
                   retry_after_seconds=wait)


def local_outcome(delivery_id: str, kind: OutcomeKind, reason: str, detail: str,
                  *, retry_after: float | None = None) -> Outcome:
    """An outcome decided without an APNs answer (payload checks, transport failures)."""
    if kind is RETRY and retry_after is None:
        retry_after = DEFAULT_RETRY_SECONDS.get(reason, 5.0)
    return Outcome(delivery_id, kind, reason=reason, detail=detail,
                   retry_after_seconds=retry_after if kind is RETRY else None)
