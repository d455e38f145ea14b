"""Orgs, their admin tokens, apps, the apps' API tokens and the org settings."""

from __future__ import annotations

from sqlalchemy import JSON, Column, ForeignKey, LargeBinary, String, Table

from clarion.store.tables.base import GUID, TS, metadata

orgs = Table(
    "orgs",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", TS, nullable=False),
)

admin_tokens = Table(
    "admin_tokens",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("org_id", GUID, ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False, default="admin"),
    Column("created_at", TS, nullable=False),
    Column("revoked_at", TS, nullable=True),
)

apps = Table(
    "apps",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("org_id", GUID, ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    # Public halves of the platform configurations (no secrets in these columns).
    Column("ios", JSON, nullable=True),
    Column("android", JSON, nullable=True),
    Column("web", JSON, nullable=True),
    # Fernet token of a JSON document holding every secret of the app (see clarion.crypto).
    Column("secrets", LargeBinary, nullable=True),
    # dry_run_on_register, token_owner_policy, max_devices_per_person, ...
    Column("settings", JSON, nullable=False),
    # {"ios": {"state": "valid"|"invalid"|"unchecked", "reason": ..., "checked_at": ...}, ...}
    Column("credential_status", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("org_id", GUID, ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
    Column("app_id", GUID, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("revoked_at", TS, nullable=True),
)

# An org's settings, read by placeholders with source "org": one JSON object per org.
org_settings = Table(
    "org_settings",
    metadata,
    Column("org_id", GUID, ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True),
    Column("settings", JSON, nullable=False),
    Column("updated_at", TS, nullable=False),
)
