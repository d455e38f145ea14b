"""App configurations: the per-app settings, the configuration document, and the read models.

An app (CIJ's "mobile app configuration") has a name, up to three platform configurations
(iOS / Android / Web, validated in ``clarion.domain.credentials``) and settings that steer
device registration. ``parse_document`` turns the JSON document a person sends into the
changes to store; everything here is pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from clarion.domain.credential_input import PlatformConfig, iso
from clarion.domain.credentials import merge_for_update, validate_platform
from clarion.domain.outcomes import Platform
from clarion.domain.text import check_document
from clarion.errors import InvalidInput

DOCUMENT_FIELDS = ("name", "ios", "android", "web", "settings")
MAX_NAME = 200
MAX_DEVICES_RANGE = (1, 1000)


class TokenOwnerPolicy(StrEnum):
    MOVE = "move"  # a token registered to a new person leaves the previous owner
    ALLOW = "allow"  # several people may hold one token (CIJ's behaviour: duplicate pushes)


class CredentialState(StrEnum):
    VALID = "valid"  # validated locally (parsed, right key type, not expired)
    INVALID = "invalid"  # a provider refused them; ``reason`` says why
    UNCHECKED = "unchecked"


@dataclass(frozen=True)
class AppSettings:
    """How device registration behaves for one app.

    ``dry_run_on_register``: send an invisible test push before storing a device (CIJ does).
    ``token_owner_policy``: what happens when a token already held by someone is registered
    to another person. ``max_devices_per_person``: registering one more evicts the oldest."""

    dry_run_on_register: bool = True
    token_owner_policy: TokenOwnerPolicy = TokenOwnerPolicy.MOVE
    max_devices_per_person: int = 10

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run_on_register": self.dry_run_on_register,
                "token_owner_policy": self.token_owner_policy.value,
                "max_devices_per_person": self.max_devices_per_person}

    @classmethod
    def from_stored(cls, raw: Mapping[str, Any] | None) -> AppSettings:
        """Settings as stored; keys missing from older rows take their defaults."""
        return merge_settings(cls(), dict(raw or {}), strict=False)


def merge_settings(base: AppSettings, raw: Any, *, strict: bool = True) -> AppSettings:
    """``base`` with the keys of ``raw`` applied, each validated."""
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"must be a JSON object, not {type(raw).__name__}",
                           fix='Send e.g. {"dry_run_on_register": true}.', field="settings")
    known = set(AppSettings.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown and strict:
        raise InvalidInput(f"unknown setting {unknown[0]!r}", field=f"settings.{unknown[0]}",
                           fix=f"Remove it; the settings are: {', '.join(sorted(known))}.")
    out = base
    if "dry_run_on_register" in raw:
        value = raw["dry_run_on_register"]
        if not isinstance(value, bool):
            raise InvalidInput("must be true or false", field="settings.dry_run_on_register",
                               fix="true sends an invisible test push before storing a device "
                               "(CIJ's behaviour); false stores devices without one.")
        out = replace(out, dry_run_on_register=value)
    if "token_owner_policy" in raw:
        value = raw["token_owner_policy"]
        allowed = [p.value for p in TokenOwnerPolicy]
        if value not in allowed:
            raise InvalidInput(f"unknown policy {str(value)[:40]!r}; allowed values are "
                               f"{' or '.join(repr(a) for a in allowed)}",
                               field="settings.token_owner_policy",
                               fix="'move' gives a device token to the person who registered "
                               "it last; 'allow' lets several people hold it (as CIJ does).")
        out = replace(out, token_owner_policy=TokenOwnerPolicy(value))
    if "max_devices_per_person" in raw:
        value = raw["max_devices_per_person"]
        low, high = MAX_DEVICES_RANGE
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInput(f"must be a whole number from {low} to {high}",
                               field="settings.max_devices_per_person",
                               fix="Pick how many devices one person may have for this app; "
                               "registering one more evicts the oldest.")
        out = replace(out, max_devices_per_person=value)
    return out


@dataclass(frozen=True)
class AppChanges:
    """What a document asks to store. ``platforms`` maps a platform to its new configuration,
    or to None to remove it; platforms not named are left as they are."""

    name: str | None
    platforms: dict[Platform, PlatformConfig | None]
    settings: AppSettings | None


def _name(raw: Any) -> str:
    fix = f"Give the app a name of 1 to {MAX_NAME} characters, e.g. \"name\": \"Contoso\"."
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("is required" if raw in (None, "") else "must be a non-empty string",
                           fix=fix, field="name")
    name = raw.strip()
    if len(name) > MAX_NAME:
        raise InvalidInput(f"is {len(name)} characters long, the limit is {MAX_NAME}",
                           fix=fix, field="name")
    return name


def parse_document(
    document: Any,
    *,
    now: datetime,
    current: Mapping[Platform, Mapping[str, Any]] | None = None,
    current_settings: AppSettings | None = None,
) -> AppChanges:
    """Validate a configuration document.

    Creating (``current`` is None): ``name`` and at least one platform are required. Updating
    (``current`` holds each configured platform's public half merged with its secrets): every
    key is optional, a platform object is merged over the stored one (see
    ``merge_for_update``), ``null`` removes a platform, settings are merged."""
    if not isinstance(document, Mapping):
        raise InvalidInput(f"the configuration must be a JSON object, not "
                           f"{type(document).__name__}",
                           fix='Send e.g. {"name": "Contoso", "web": {"vapid_subject": '
                           '"mailto:ops@contoso.com"}}.')
    check_document(dict(document))  # a CLI --config file too, not only JSON bodies
    unknown = sorted(set(document) - set(DOCUMENT_FIELDS))
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}", field=unknown[0],
                           fix=f"Remove it; the fields are: {', '.join(DOCUMENT_FIELDS)}.")
    creating = current is None
    name = _name(document.get("name")) if creating or "name" in document else None
    platforms: dict[Platform, PlatformConfig | None] = {}
    for platform in Platform:
        if platform.value not in document:
            continue
        raw = document[platform.value]
        if raw is None:
            if not creating:
                platforms[platform] = None
            continue
        if not creating:
            raw = merge_for_update(platform, (current or {}).get(platform), raw)
        platforms[platform] = validate_platform(platform, raw, now=now)
    remaining = set(current or {}) | set(platforms)
    remaining -= {p for p, cfg in platforms.items() if cfg is None}
    if not remaining:
        raise InvalidInput("an app needs at least one platform: ios, android or web",
                           fix="Add an \"ios\", \"android\" or \"web\" section (removing the "
                           "last one is not possible: delete the app instead).")
    settings = None
    if "settings" in document:
        base = current_settings or AppSettings()
        settings = merge_settings(base, document["settings"])
    elif creating:
        settings = AppSettings()
    return AppChanges(name=name, platforms=platforms, settings=settings)


@dataclass(frozen=True)
class CredentialStatus:
    state: CredentialState
    reason: str | None
    checked_at: str  # ISO 8601, UTC

    @classmethod
    def valid(cls, now: datetime) -> CredentialStatus:
        return cls(CredentialState.VALID, None, iso(now))

    @classmethod
    def invalid(cls, now: datetime, reason: str) -> CredentialStatus:
        return cls(CredentialState.INVALID, reason, iso(now))

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state.value, "reason": self.reason, "checked_at": self.checked_at}

    @classmethod
    def from_stored(cls, raw: Mapping[str, Any]) -> CredentialStatus:
        state = raw.get("state")
        return cls(CredentialState(state) if state in set(CredentialState)
                   else CredentialState.UNCHECKED, raw.get("reason"), str(raw.get("checked_at")))


# --- read models (returned by the services; never carry a secret) --------------------------


@dataclass(frozen=True)
class AppRead:
    id: str
    org_id: str
    name: str
    platforms: dict[Platform, dict[str, Any]]  # public halves only
    settings: AppSettings
    credential_status: dict[Platform, CredentialStatus]
    api_token_count: int  # active (not revoked) tokens
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (what the CLI prints; the API has its own typed schema)."""
        return {
            "id": self.id, "org_id": self.org_id, "name": self.name,
            **{p.value: self.platforms.get(p) for p in Platform},
            "settings": self.settings.as_dict(),
            "credential_status": {p.value: s.as_dict()
                                  for p, s in self.credential_status.items()},
            "api_token_count": self.api_token_count,
            "created_at": iso(self.created_at), "updated_at": iso(self.updated_at),
        }


@dataclass(frozen=True)
class AppCreated:
    app: AppRead
    api_token: str  # shown once


@dataclass(frozen=True)
class ApiTokenRead:
    id: str
    app_id: str
    name: str
    prefix: str  # the first characters, to tell tokens apart
    created_at: datetime
    revoked_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "app_id": self.app_id, "name": self.name, "prefix": self.prefix,
                "created_at": iso(self.created_at),
                "revoked_at": None if self.revoked_at is None else iso(self.revoked_at)}


@dataclass(frozen=True)
class ApiTokenCreated:
    token: ApiTokenRead
    value: str  # shown once


@dataclass(frozen=True)
class ApiTokenInfo:
    """A verified API token: which token, of which app, in which org."""

    token_id: str
    app_id: str
    org_id: str


@dataclass(frozen=True)
class Endpoints:
    """The exact URLs a token backend calls (CIJ's "Developer information" tab)."""

    register_device: str
    register_devices_batch: str
    registration_status: str
    cleanup_device: str
    cleanup_devices_batch: str
    interaction_events: str
    odata_contacts: str
    odata_leads: str


@dataclass(frozen=True)
class DeveloperInfo:
    public_url: str
    org_id: str
    app_id: str
    app_name: str
    platforms: list[Platform]
    endpoints: Endpoints
    web_vapid_public_key: str | None
    api_token_count: int
    example_registration: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"public_url": self.public_url, "org_id": self.org_id, "app_id": self.app_id,
                "app_name": self.app_name, "platforms": [p.value for p in self.platforms],
                "endpoints": asdict(self.endpoints),
                "web_vapid_public_key": self.web_vapid_public_key,
                "api_token_count": self.api_token_count,
                "example_registration": self.example_registration}


def endpoints_for(public_url: str, org_id: str) -> Endpoints:
    base = f"{public_url.rstrip('/')}/api/v1.0/orgs/{org_id}"
    reg = f"{base}/pushdeviceregistration"
    data = f"{public_url.rstrip('/')}/api/data/v9.0"
    return Endpoints(
        register_device=f"{reg}/devices",
        register_devices_batch=f"{reg}/devices/batch",
        registration_status=f"{reg}/devices/status/",  # the trailing slash is CIJ's
        cleanup_device=f"{reg}/devices/cleanup",
        cleanup_devices_batch=f"{reg}/devices/cleanup/batch",
        interaction_events=f"{base}/pushdatareceiver/events",
        odata_contacts=f"{data}/contacts",
        odata_leads=f"{data}/leads",
    )


def example_registration(app_id: str, platforms: list[Platform]) -> dict[str, Any]:
    """A body for ``devices`` as CIJ documents it, with placeholders to replace."""
    body: dict[str, Any] = {"MobileAppId": app_id, "UserId": "<contact or lead id>",
                            "ApiToken": "<API token>"}
    if Platform.IOS in platforms:
        body["ApnsDeviceToken"] = "<APNs device token, hex>"
    elif Platform.ANDROID in platforms:
        body["FcmDeviceToken"] = "<FCM registration token>"
    else:  # the browser's PushSubscription.toJSON()
        body["WebPushSubscription"] = {"endpoint": "<push service URL>",
                                       "keys": {"p256dh": "<base64url>", "auth": "<base64url>"}}
    return body


def api_token_name(name: str) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > MAX_NAME:
        raise InvalidInput(f"a token name must have 1 to {MAX_NAME} characters", field="name",
                           fix="Name the token after what uses it, e.g. \"backend-prod\".")
    return name
