"""Shared reading helpers for provider credentials (see ``clarion.domain.credentials``).

Every helper raises ``InvalidInput`` with the dotted field name (``ios.key_id``), a message
that never echoes a secret, and a fix a person can act on.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clarion.domain.outcomes import Platform
from clarion.errors import InvalidInput

# What a person may send for each platform. On update the stored halves are re-read through
# the same validators, so every stored input field is listed here too.
INPUT_FIELDS: dict[Platform, frozenset[str]] = {
    Platform.IOS: frozenset({"auth", "signing_key", "key_id", "team_id", "bundle_id",
                             "environment", "certificate_p12", "certificate_password"}),
    Platform.ANDROID: frozenset({"service_account", "notification_block"}),
    Platform.WEB: frozenset({"vapid_subject", "vapid_private_key", "vapid_public_key"}),
}


@dataclass(frozen=True)
class PlatformConfig:
    """One platform's validated configuration: ``public`` is shown, ``secret`` never is."""

    public: dict[str, Any]
    secret: dict[str, Any]


def bad(field: str, message: str, fix: str) -> InvalidInput:
    return InvalidInput(message, fix=fix, field=field)


def as_object(raw: Any, field: str, example: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise bad(field, f"must be a JSON object, not {type(raw).__name__}",
                  f"Send an object such as {example}.")
    return raw


def reject_unknown(raw: Mapping[str, Any], platform: Platform) -> None:
    unknown = sorted(set(raw) - INPUT_FIELDS[platform])
    if unknown:
        allowed = ", ".join(sorted(INPUT_FIELDS[platform]))
        raise bad(f"{platform.value}.{unknown[0]}", f"unknown field {unknown[0]!r}",
                  f"Remove it; the {platform.value} fields are: {allowed}.")


def required_text(raw: Mapping[str, Any], key: str, field: str, fix: str) -> str:
    """``raw[key]`` as a stripped, non-empty string."""
    value = raw.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise bad(field, "is required", fix)
    if not isinstance(value, str):
        raise bad(field, f"must be a string, not {type(value).__name__}", fix)
    return value.strip()


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2, the form Web Push keys use)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    text = "".join(text.split()).rstrip("=")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
