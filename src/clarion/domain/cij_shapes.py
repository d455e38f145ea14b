"""The request bodies of CIJ's endpoints, declared once: the parsers read them through these
declarations (``clarion.domain.registration``, ``clarion.domain.interactions``) and the
OpenAPI document is generated from them (``Shape.json_schema``).

CIJ's backends are .NET: property names are matched case-insensitively (``Field.key``), and a
field's declared ``maxLength`` is the limit its parser enforces. The parsers are written by
hand rather than by a validation library because every malformed body must get CIJ's 400 with
a sentence naming the field and the fix, at the cost of microseconds (these are the two
hottest endpoints).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_GUID = {"type": "string", "format": "uuid"}


@dataclass(frozen=True, slots=True, eq=False)  # compared and hashed by identity
class Field:
    name: str  # as CIJ spells it
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = True
    # Derived once here, not in properties: the parsers read them for every field of every
    # request on the two hottest endpoints.
    key: str = field(init=False)  # the name as parsers look it up (bodies are folded to lower)
    max_length: int = field(init=False)  # the schema's maxLength (512 when it has none)

    def __post_init__(self) -> None:
        limit = self.schema.get("maxLength")
        object.__setattr__(self, "key", self.name.lower())
        object.__setattr__(self, "max_length", int(limit) if limit is not None else 512)


@dataclass(frozen=True, slots=True)
class Shape:
    name: str
    description: str
    fields: tuple[Field, ...]

    def __getitem__(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "object", "title": self.name, "description": self.description,
            "properties": {f.name: {**f.schema, "description": f.description}
                           for f in self.fields},
            "required": [f.name for f in self.fields if f.required],
        }


MOBILE_APP_ID = Field("MobileAppId", "The app id from the developer information.",
                      {**_GUID, "maxLength": 64})
USER_ID = Field("UserId", "A contact, lead or profile id of the organization.",
                {"type": "string", "maxLength": 100})
API_TOKEN = Field("ApiToken", "An API token of the app.", {"type": "string", "maxLength": 512})

WEB_PUSH_SUBSCRIPTION = Shape(
    "PushSubscription", "The browser's PushSubscription.toJSON().", (
        Field("endpoint", "The push service URL of the subscription.",
              {"type": "string", "format": "uri", "maxLength": 2048}),
        Field("keys", "The subscription's keys.", {
            "type": "object", "required": ["p256dh", "auth"], "properties": {
                "p256dh": {"type": "string", "description": "base64url P-256 public key of "
                                                            "the browser (65 bytes)"},
                "auth": {"type": "string", "description": "base64url authentication secret "
                                                          "(16 bytes)"}}}),
    ))

DEVICE_REGISTRATION = Shape(
    "DeviceRegistration",
    "One device of a person: exactly one of ApnsDeviceToken, FcmDeviceToken or "
    "WebPushSubscription.", (
        MOBILE_APP_ID, USER_ID, API_TOKEN,
        Field("ApnsDeviceToken", "iOS: hex APNs token (≤ 64 chars).",
              {"type": "string", "maxLength": 8192}, required=False),
        Field("FcmDeviceToken", "Android: FCM registration token.",
              {"type": "string", "maxLength": 8192}, required=False),
        Field("WebPushSubscription", "Browsers (Clarion extension): PushSubscription.toJSON().",
              {"$ref": "#/components/schemas/PushSubscription"}, required=False),
    ))

DEVICE_CLEANUP = Shape(
    "DeviceCleanup", "Remove a person's device, or all their devices of the app.", (
        MOBILE_APP_ID, API_TOKEN, USER_ID,
        Field("DeviceToken", "Leave out to remove every device of the user for the app.",
              {"type": "string", "maxLength": 8192}, required=False),
    ))

STATUS_QUERY = Shape(
    "StatusQuery", "Which tracked registration requests to report.", (
        Field("RegistrationRequestIds", "The ids returned with x-ms-track-registration: true.",
              {"type": "array", "items": _GUID, "minItems": 1, "maxItems": 1000}),
        MOBILE_APP_ID, API_TOKEN,
    ))

TRACKING_ID = Field("TrackingId", "The notification's trackingId (the send id).",
                    {**_GUID, "maxLength": 64})
INTERACTION_REPORT = Shape(
    "InteractionReport", "What a device did with a notification.", (
        TRACKING_ID,
        Field("DeviceToken", "The device token as registered (Web Push: the subscription "
                             "endpoint).", {"type": "string", "maxLength": 8192}),
        Field("PushNotificationStatus",
              '1 / "1" / "Opened"; 0 / "0" / "Clicked"; Clarion also accepts "Delivered" and '
              '"Dismissed", and "OptedIn" / "OptedOut" (also "opted_in" / "opted_out"), which '
              'record the person\'s consent for the app instead of an interaction (names are '
              'case-insensitive).',
              {"oneOf": [{"type": "integer", "enum": [0, 1]},
                         {"type": "string", "enum": ["0", "1", "Opened", "Clicked",
                                                     "Delivered", "Dismissed", "OptedIn",
                                                     "OptedOut", "opted_in", "opted_out"]}]}),
        Field("Timestamp", "Clarion extension: when it happened (≤ 30 days ago, not in the "
                           "future). Default: now.",
              {"type": "string", "format": "date-time", "maxLength": 64}, required=False),
    ))
LEGACY_INTERACTION_REPORT = Shape(
    "LegacyInteractionReport", "Legacy API v1: the trackingId is in the path.",
    tuple(f for f in INTERACTION_REPORT.fields if f is not TRACKING_ID))

REQUEST_SHAPES = (WEB_PUSH_SUBSCRIPTION, DEVICE_REGISTRATION, DEVICE_CLEANUP, STATUS_QUERY,
                  INTERACTION_REPORT, LEGACY_INTERACTION_REPORT)
