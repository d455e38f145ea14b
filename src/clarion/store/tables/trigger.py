"""Triggers and their fires."""

from __future__ import annotations

from sqlalchemy import JSON, Column, ForeignKey, Index, String, Table, UniqueConstraint

from clarion.store.tables.base import GUID, TS, metadata

triggers = Table(
    "triggers",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("org_id", GUID, ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("attributes", JSON, nullable=False),  # {"cart_total": "number", ...}
    Column("created_at", TS, nullable=False),
    UniqueConstraint("org_id", "name", name="uq_triggers_org_name"),
)

# Every fire of a trigger, stored in the transaction that publishes it. The unique key makes a
# re-fire with the same Idempotency-Key find the first one instead of firing again.
trigger_firings = Table(
    "trigger_firings",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("org_id", GUID, nullable=False),
    Column("trigger_id", GUID, ForeignKey("triggers.id", ondelete="CASCADE"), nullable=False),
    Column("trigger", String(100), nullable=False),
    Column("person_id", GUID, nullable=False),
    Column("data", JSON, nullable=False),
    Column("idempotency_key", String(200), nullable=True),
    Column("fired_at", TS, nullable=False),
    UniqueConstraint("trigger_id", "idempotency_key", name="uq_trigger_firings_idempotency"),
    Index("ix_trigger_firings_org_time", "org_id", "fired_at"),
)
