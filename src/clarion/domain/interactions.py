"""Interaction reports: the CIJ request shapes, Clarion's extensions, and the rules around them.

Pure. Parses the bodies apps send to the interaction API (keys matched case-insensitively, as
CIJ's .NET deserialiser does; Microsoft Learn, *developer-push-interactions*):

* ``POST /api/v1.0/orgs/{orgId}/pushdatareceiver/events``
  ``{"TrackingId": "<guid>", "DeviceToken": "<token>", "PushNotificationStatus": 1}``
* legacy ``POST /api/v1.0/orgs/{orgId}/pushchannel/event/trackings/{TrackingId}``
  ``{"DeviceToken": "<token>", "PushNotificationStatus": 0 | 1}``

``PushNotificationStatus`` (the same values on both endpoints):

=====================================  ==========  =========================================
value                                  kind        where it comes from
=====================================  ==========  =========================================
``1``, ``"1"``, ``"Opened"``           opened      CIJ (its samples send all three)
``0``, ``"0"``, ``"Clicked"``          clicked     CIJ legacy API v1 (0 = Clicked); accepted on
                                                   the new endpoint too, since an app without
                                                   tracking consent opens ``originalLink`` itself
                                                   and can only report the click this way
``"Delivered"``                        delivered   Clarion: the app saw the notification arrive
``"Dismissed"``                        dismissed   Clarion: the person swiped it away
``"OptedIn"``, ``"opted_in"``          opted_in    Clarion: the person allowed commercial pushes
                                                   from the app (a consent choice, see below)
``"OptedOut"``, ``"opted_out"``        opted_out   Clarion: the person turned them off
=====================================  ==========  =========================================

Names are matched case-insensitively (``"opened"`` works). No number is invented for the
Clarion additions: they are names only.

The two consent choices (``ConsentChoice``, not an ``InteractionKind``) are not interactions
with the notification: they record the person's consent for the app, as ``PUT …/consent``
does (source ``interaction api``, time the report's ``Timestamp``), and count in no report.
They take the same (TrackingId, DeviceToken) pair as any report, so only a device that
received one of the app's notifications can set its person's choice.

``DeviceToken`` is the token the device was registered with: APNs hex (any case), an FCM
token, or for Web Push the subscription's ``endpoint`` (the endpoint string, or the whole
``PushSubscription.toJSON()`` object, whose ``endpoint`` is used).

Batches (Clarion extension): the ``pushdatareceiver/events`` body may be a JSON array of 1 to
100 such reports, for app backends that relay their devices' reports. A batch is all or
nothing (any bad item → 400 naming it) and counts as one report per item for rate limits.

``Timestamp`` (Clarion extension, optional): when the interaction happened, ISO 8601 (a time
without an offset is UTC). It may not lie in the future (a minute of clock skew is tolerated)
nor more than 30 days back; without it the time of receipt is used. Apps that queue events
while offline send it so reports put the interaction in the right hour.

The module also holds the per-client rate limiter of the (credential-less) endpoint and the
check of a tracked link's redirect target.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from clarion.domain.cij_shapes import INTERACTION_REPORT, TRACKING_ID
from clarion.errors import InvalidInput
from clarion.ids import canonical_guid

MAX_BATCH = 100  # reports per request in Clarion's batch form (the same cap as CIJ batches)
_TOKEN = INTERACTION_REPORT["DeviceToken"]
_STATUS_FIELD = INTERACTION_REPORT["PushNotificationStatus"]
_TIMESTAMP = INTERACTION_REPORT["Timestamp"]
MAX_TOKEN_LENGTH = _TOKEN.max_length  # FCM tokens are ≤ 4096; Web Push endpoints ≤ 2048
MAX_AGE = timedelta(days=30)
CLOCK_SKEW = timedelta(seconds=60)


class InteractionKind(StrEnum):
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    DISMISSED = "dismissed"


class ConsentChoice(StrEnum):
    """What a consent report says (Clarion extension): recorded as the person's consent for
    the app, not as an interaction."""

    OPTED_IN = "opted_in"
    OPTED_OUT = "opted_out"


class Source(StrEnum):
    CIJ_EVENTS = "cij_events"  # POST …/pushdatareceiver/events
    CIJ_LEGACY = "cij_legacy"  # POST …/pushchannel/event/trackings/{TrackingId}
    LINK = "link"  # GET /l/<token> (a tracked link followed)


ENGAGING = frozenset({InteractionKind.OPENED, InteractionKind.CLICKED})

CONSENT_CHOICES = frozenset(choice.value for choice in ConsentChoice)

_STATUS: dict[str, InteractionKind | ConsentChoice] = {
    "1": InteractionKind.OPENED,
    "opened": InteractionKind.OPENED,
    "0": InteractionKind.CLICKED,
    "clicked": InteractionKind.CLICKED,
    "delivered": InteractionKind.DELIVERED,
    "dismissed": InteractionKind.DISMISSED,
    "optedin": ConsentChoice.OPTED_IN,
    "opted_in": ConsentChoice.OPTED_IN,
    "optedout": ConsentChoice.OPTED_OUT,
    "opted_out": ConsentChoice.OPTED_OUT,
}
_STATUS_FIX = ('Send PushNotificationStatus as 1 or "Opened", 0 or "Clicked", "Delivered" or '
               '"Dismissed"; or, to record the person\'s consent for the app, "OptedIn" or '
               '"OptedOut".')


@dataclass(frozen=True, slots=True)
class InteractionReport:
    """One parsed interaction report (not yet checked against the sends)."""

    tracking_id: str  # the send id (canonical GUID form)
    device_token: str  # as given (APNs tokens are also tried lower-cased when looked up)
    kind: InteractionKind | ConsentChoice  # a consent choice is recorded as consent
    occurred_at: datetime  # aware, UTC


@dataclass(frozen=True, slots=True)
class Target:
    """The delivery a (trackingId, device token) pair names, with everything recording an
    interaction about it needs (so recording reads nothing back)."""

    delivery_id: str
    send_id: str
    org_id: str
    app_id: str
    person_id: str
    device_id: str
    platform: str
    journey_id: str | None
    journey_step_id: str | None
    message_id: str | None

    def values(self) -> tuple[str | None, ...]:
        """The fields in declaration order (``Target(*values)`` builds it back)."""
        return (self.delivery_id, self.send_id, self.org_id, self.app_id, self.person_id,
                self.device_id, self.platform, self.journey_id, self.journey_step_id,
                self.message_id)


@dataclass(frozen=True, slots=True)
class InteractionEvent(Target):
    """One recorded interaction, as subscribers of in-service events see it: the delivery it
    is about (the fields of ``Target``) and what happened."""

    id: int  # the interaction row's id: the dedupe key
    kind: InteractionKind
    source: Source
    first: bool  # the first of its kind for this delivery (device)
    occurred_at: datetime  # aware, UTC

    @property
    def topic(self) -> str:
        return f"interaction.{self.kind.value}"


def _fold(obj: Any) -> dict[str, Any]:
    if type(obj) is dict:  # what JSON parsers return: skip the (slow) ABC check
        return {k.lower(): v for k, v in obj.items()}
    if not isinstance(obj, Mapping):
        raise InvalidInput(
            "the body must be a JSON object",
            fix='Send {"TrackingId": "<trackingId of the notification>", "DeviceToken": '
                '"<the device token>", "PushNotificationStatus": 1}.')
    return {str(k).lower(): v for k, v in obj.items()}


def parse_tracking_id(value: Any) -> str:
    """The send id a notification carried as ``trackingId``, or InvalidInput."""
    if value is None or value == "":
        raise InvalidInput(
            "TrackingId is missing or empty",
            fix="Send the trackingId the notification carried. Test sends carry an empty "
                "trackingId and cannot be reported.",
            field="TrackingId")
    if not isinstance(value, str) or len(value) > TRACKING_ID.max_length:
        raise InvalidInput("TrackingId must be a GUID string",
                           fix="Send the trackingId the notification carried, as a string.",
                           field="TrackingId")
    canonical = canonical_guid(value)  # the form Clarion sends: no UUID object needed
    if canonical is not None:
        return canonical
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError as exc:
        raise InvalidInput(f"TrackingId {value!r} is not a GUID",
                           fix="Send the trackingId the notification carried, unchanged.",
                           field="TrackingId") from exc


def _device_token(value: Any) -> str:
    if isinstance(value, Mapping):  # a Web Push PushSubscription.toJSON()
        value = {str(k).lower(): v for k, v in value.items()}.get("endpoint")
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(
            "DeviceToken is missing or not a non-empty string",
            fix="Send the device token the app registered (for Web Push, the subscription's "
                "endpoint).",
            field="DeviceToken")
    token = value.strip()
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidInput(f"DeviceToken is {len(token)} characters long",
                           fix="Send the device token the app registered.", field="DeviceToken")
    return token


def parse_status(value: Any) -> InteractionKind | ConsentChoice:
    """``PushNotificationStatus`` → kind or consent choice (see the table in the module
    docstring)."""
    if isinstance(value, bool):  # JSON true/false: not a status (bool is an int in Python)
        key = None
    elif isinstance(value, int):
        key = str(value)
    elif isinstance(value, str):
        key = value.strip().lower()
    else:
        key = None
    kind = _STATUS.get(key) if key is not None else None
    if kind is None:
        shown = "missing" if value is None else f"{value!r} is not a known status"
        raise InvalidInput(f"PushNotificationStatus {shown}", fix=_STATUS_FIX,
                           field="PushNotificationStatus")
    return kind


def parse_timestamp(value: Any, now: datetime) -> datetime:
    """The optional ``Timestamp``: ISO 8601, not in the future, at most 30 days old."""
    if value is None:
        return now
    if not isinstance(value, str) or len(value) > _TIMESTAMP.max_length:
        raise InvalidInput("Timestamp must be an ISO 8601 string",
                           fix='Send e.g. "2026-01-31T12:00:00Z", or leave Timestamp out.',
                           field="Timestamp")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"Timestamp {value!r} is not an ISO 8601 date and time",
                           fix='Send e.g. "2026-01-31T12:00:00Z", or leave Timestamp out.',
                           field="Timestamp") from exc
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    if at > now + CLOCK_SKEW:
        raise InvalidInput(f"Timestamp {value!r} is in the future",
                           fix="Check the device clock, or leave Timestamp out (the time of "
                               "receipt is used).", field="Timestamp")
    if at < now - MAX_AGE:
        raise InvalidInput(f"Timestamp {value!r} is more than 30 days old",
                           fix="Interactions older than 30 days are not recorded; drop them.",
                           field="Timestamp")
    return at


def parse_event(obj: Any, *, now: datetime) -> InteractionReport:
    """A ``pushdatareceiver/events`` body, or InvalidInput (the 400) naming what is wrong."""
    d = _fold(obj)
    return InteractionReport(
        tracking_id=parse_tracking_id(d.get(TRACKING_ID.key)),
        device_token=_device_token(d.get(_TOKEN.key)),
        kind=parse_status(d.get(_STATUS_FIELD.key)),
        occurred_at=parse_timestamp(d.get(_TIMESTAMP.key), now),
    )


def parse_events(obj: Any, *, now: datetime) -> list[InteractionReport]:
    """One report (CIJ), or Clarion's batch form: a JSON array of 1 to 100 reports.

    A batch is all or nothing: one malformed item refuses the request, naming the item."""
    if not isinstance(obj, list):
        return [parse_event(obj, now=now)]
    if not obj or len(obj) > MAX_BATCH:
        raise InvalidInput(f"a batch holds 1 to {MAX_BATCH} reports, {len(obj)} given",
                           fix=f"Send at most {MAX_BATCH} reports per request.")
    out: list[InteractionReport] = []
    for i, item in enumerate(obj):
        try:
            out.append(parse_event(item, now=now))
        except InvalidInput as exc:
            raise InvalidInput(f"item {i}: {exc.message}", fix=exc.fix, field=exc.field,
                               code=exc.code) from exc
    return out


def parse_legacy_event(obj: Any, *, tracking_id: str, now: datetime) -> InteractionReport:
    """A legacy ``pushchannel/event/trackings/{TrackingId}`` body; the id comes from the path."""
    d = _fold(obj)
    path_id = parse_tracking_id(tracking_id)
    body_id = d.get(TRACKING_ID.key)
    if body_id not in (None, "") and parse_tracking_id(body_id) != path_id:
        raise InvalidInput("TrackingId in the body differs from the one in the path",
                           fix="Leave TrackingId out of the body (the path names it).",
                           field="TrackingId")
    return InteractionReport(
        tracking_id=path_id,
        device_token=_device_token(d.get(_TOKEN.key)),
        kind=parse_status(d.get(_STATUS_FIELD.key)),
        occurred_at=parse_timestamp(d.get(_TIMESTAMP.key), now),
    )


def token_variants(token: str) -> tuple[str, ...]:
    """Forms under which a device token may be stored: as given, and lower-cased (APNs tokens
    are stored lower-cased; iOS apps often report them upper-case)."""
    lower = token.lower()
    return (token,) if lower == token else (token, lower)


# ----------------------------------------------------------------------- tracked links

_UNSAFE_SCHEMES = frozenset({"javascript", "data", "vbscript", "file", "blob", "about"})


def redirect_target(link: Any) -> str | None:
    """The stored original link if it is safe to redirect to, else None.

    The link was validated when the send was created (``clarion.domain.messages``): an absolute
    http(s) URL or an app link (``contoso://orders/42``). This re-check refuses anything that a
    browser would execute or read locally, whatever was stored."""
    if not isinstance(link, str) or not link or len(link) > 2048:
        return None
    if any(c in link for c in "\r\n\t\x00"):
        return None
    parts = urlsplit(link)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return link if parts.netloc else None
    if not scheme or scheme in _UNSAFE_SCHEMES or "." in scheme:
        return None
    return link  # an app link


# ------------------------------------------------------------------------ rate limits


class ClientRateLimiter:
    """One token bucket per client (IP address), for the credential-less interaction API.

    Hand-written rather than ``clarion.domain.ratelimit.TokenBucket``: that bucket reserves
    tokens (balances go negative, callers wait), while here a request over the limit is refused
    and must not consume anything. Bounded: the least recently seen clients are forgotten past
    ``max_clients`` (a forgotten client starts again with a full bucket, which only errs on the
    lenient side). Pure: the caller passes the time (``time.monotonic()``).
    """

    def __init__(self, rate_per_second: float, *, burst: float | None = None,
                 max_clients: int = 100_000) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate must be positive (disable the limiter instead)")
        self.rate = rate_per_second
        self.capacity = burst if burst else max(1.0, 2 * rate_per_second)
        self._max = max_clients
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()  # client -> [tokens, at]

    def check(self, client: str, now: float, n: int = 1) -> float:
        """0 when ``n`` reports may go ahead (``n`` tokens taken), else seconds to wait."""
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = [self.capacity, now]
            self._buckets[client] = bucket
            if len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(client)
            bucket[0] = min(self.capacity, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
        if bucket[0] >= n:
            bucket[0] -= n
            return 0.0
        return (n - bucket[0]) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)
