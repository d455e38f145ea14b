"""Devices and the registration requests that create and clean them up."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from clarion.store.tables.base import GUID, TS, metadata

devices = Table(
    "devices",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("org_id", GUID, nullable=False),
    Column("app_id", GUID, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("person_id", GUID, nullable=False),
    Column("platform", String(8), nullable=False),  # ios | android | web
    Column("token", Text, nullable=False),  # APNs hex, FCM token, or Web Push endpoint
    Column("token_hash", String(64), nullable=False),  # sha256(token): fixed-size index key
    Column("web_keys", JSON, nullable=True),  # {"p256dh": ..., "auth": ...}
    Column("state", String(12), nullable=False),  # active | invalid | mismatch
    Column("state_reason", Text, nullable=True),
    Column("state_changed_at", TS, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("last_registered_at", TS, nullable=False),
    UniqueConstraint("app_id", "person_id", "token_hash", name="uq_devices_app_person_token"),
    Index("ix_devices_app_token", "app_id", "token_hash"),
    # Fan-out reads a page's people's active devices from this index alone (platform and id
    # in it: no lookup of the device row per person, most people having one device) (0005).
    Index("ix_devices_app_person_state", "app_id", "person_id", "state", "platform", "id"),
)

registration_requests = Table(
    "registration_requests",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("org_id", GUID, nullable=False),
    Column("app_id", GUID, nullable=False, index=True),
    Column("api_token_id", GUID, nullable=False),
    Column("kind", String(10), nullable=False),  # register | cleanup
    Column("user_id", String(100), nullable=False),
    Column("token_kind", String(8), nullable=True),  # apns | fcm | webpush
    Column("token", Text, nullable=True),
    Column("web_keys", JSON, nullable=True),
    Column("tracked", Boolean, nullable=False),
    Column("callback_url", Text, nullable=True),
    Column("callback_headers", JSON, nullable=True),
    Column("callback_signature", String(64), nullable=True),
    Column("status", String(10), nullable=False),  # Pending | Success | Failed
    Column("failure_reason", String(40), nullable=True),
    Column("detail", Text, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("finished_at", TS, nullable=True),
)
