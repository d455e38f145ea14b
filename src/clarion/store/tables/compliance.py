"""Compliance (``clarion.domain.compliance``): quiet times, frequency caps, consent."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    false,
)

from clarion.store.tables.base import GUID, TS, BigId, metadata

# One row per org that set any rule; no row = no rule (the fan-out's fast path).
compliance_settings = Table(
    "compliance_settings",
    metadata,
    Column("org_id", GUID, ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True),
    Column("quiet_times", JSON, nullable=True),  # the profile document, as given
    Column("frequency_caps", JSON, nullable=True),  # {"push": {"per_24h": …}}
    Column("require_consent", Boolean, nullable=False, server_default=false()),
    # Someone opted out of an app's commercial push: fan-out reads consent even when the org
    # does not require it (an explicit opt-out is always honoured).
    Column("opt_outs", Boolean, nullable=False, server_default=false()),
    Column("time_zone", String(64), nullable=True),  # the org's, when a person has none
    Column("updated_at", TS, nullable=False),
)

# A person's opt-in or opt-out for an app's commercial push, with where it came from.
consents = Table(
    "consents",
    metadata,
    Column("org_id", GUID, ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
    Column("app_id", GUID, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("person_id", GUID, nullable=False),
    Column("opted_in", Boolean, nullable=False),
    Column("source", String(64), nullable=False),
    Column("at", TS, nullable=False),
    PrimaryKeyConstraint("app_id", "person_id", name="pk_consents"),
)

# Commercial pushes that left, one row per (send, person): what frequency caps count. Written
# in the transaction that creates the person's deliveries (after the people's rows are locked
# on PostgreSQL), so no two workers can both pass a full cap.
cap_ledger = Table(
    "cap_ledger",
    metadata,
    Column("org_id", GUID, nullable=False),
    Column("person_id", GUID, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("send_id", GUID, ForeignKey("sends.id", ondelete="CASCADE"), nullable=False),
    Column("sent_at", TS, nullable=False),
    PrimaryKeyConstraint("send_id", "person_id", name="pk_cap_ledger"),
    Index("ix_cap_ledger_person", "org_id", "person_id", "sent_at"),
)

# Pushes held by quiet time: the person and when their quiet time ends; a
# ``compliance.release`` job per (send, release instant) sends them then.
held_pushes = Table(
    "held_pushes",
    metadata,
    Column("send_id", GUID, ForeignKey("sends.id", ondelete="CASCADE"), nullable=False),
    Column("person_id", GUID, nullable=False),
    Column("release_at", TS, nullable=False),
    Column("held_at", TS, nullable=False),
    PrimaryKeyConstraint("send_id", "person_id", name="pk_held_pushes"),
    Index("ix_held_pushes_release", "send_id", "release_at"),
)

# What the rules did to each person: held (with when it ends), released, blocked (with the
# reason). Read by a person's timeline and the blocked-recipients export; written only when an
# org's rules apply, in the transaction that decided.
compliance_events = Table(
    "compliance_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("org_id", GUID, nullable=False),
    Column("app_id", GUID, nullable=False),
    Column("send_id", GUID, ForeignKey("sends.id", ondelete="CASCADE"), nullable=False),
    Column("person_id", GUID, nullable=False),
    Column("kind", String(12), nullable=False),  # held | released | blocked
    # quiet_time | frequency_cap | no_consent | expired
    Column("reason", String(32), nullable=False),
    Column("at", TS, nullable=False),
    Column("until", TS, nullable=True),  # held: when the quiet time ends
    Index("ix_compliance_events_person", "org_id", "person_id", "at"),
    Index("ix_compliance_events_send", "send_id", "kind"),
)
