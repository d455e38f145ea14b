"""The provider port's vocabulary: what is sent to one device and what came of it.

Adapters in ``clarion.providers`` turn a batch of ``DeviceSend`` into exactly one ``Outcome``
per send; services decide what each outcome means for the device and the send (prune, retry,
flag the app's credentials). No vendor type crosses this boundary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class Platform(StrEnum):
    IOS = "ios"
    ANDROID = "android"
    WEB = "web"


class OutcomeKind(StrEnum):
    ACCEPTED = "accepted"  # the provider took it (provider_id set)
    INVALID_TOKEN = "invalid_token"  # dead token: prune, never send again
    MISMATCH = "mismatch"  # token belongs to another app/environment: keep, say why
    RETRY_LATER = "retry_later"  # passing condition: try again after retry_after_seconds
    REJECTED = "rejected"  # permanent failure of this one send (payload, topic, ...)
    CREDENTIAL_ERROR = "credential_error"  # the app's credentials are wrong: pause the app


@dataclass(frozen=True, slots=True)
class DeviceAddress:
    platform: Platform
    token: str  # APNs hex token, FCM registration token, or Web Push endpoint
    web_keys: Mapping[str, str] | None = None  # {"p256dh", "auth"} for Web Push


@dataclass(frozen=True, slots=True)
class Notification:
    title: str = ""
    subtitle: str = ""
    body: str = ""
    image_url: str | None = None
    link: str | None = None
    original_link: str | None = None
    tracking_id: str = ""
    data: Mapping[str, str] = field(default_factory=dict)
    ttl_seconds: int | None = None
    priority: str = "high"  # high | normal
    collapse_key: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceSend:
    delivery_id: str
    device: DeviceAddress
    notification: Notification
    dry_run: bool = False  # invisible validation push (APNs background / FCM validate_only)


@dataclass(frozen=True, slots=True)
class Outcome:
    delivery_id: str
    kind: OutcomeKind
    reason: str | None = None  # the provider's reason, e.g. "BadDeviceToken"
    detail: str | None = None  # a sentence for a person: cause and fix
    provider_id: str | None = None
    retry_after_seconds: float | None = None


class Sender(Protocol):
    """One provider adapter. ``credentials`` is the app's full platform configuration (public
    fields and decrypted secrets). Must return exactly one outcome per send, in any order."""

    async def send(
        self, credentials: Mapping[str, Any], batch: Sequence[DeviceSend]
    ) -> list[Outcome]: ...
