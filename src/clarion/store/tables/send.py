"""Sends, their audiences and messages (designed and per person), and their deliveries."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects import postgresql

from clarion.store.tables.base import GUID, TS, metadata

sends = Table(
    "sends",
    metadata,
    Column("id", GUID, primary_key=True),  # also the trackingId the devices receive
    Column("org_id", GUID, ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
    Column("app_id", GUID, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("people_count", Integer, nullable=False),  # the audience's size (send_audience)
    Column("message", JSON, nullable=False),
    Column("idempotency_key", String(200), nullable=True),
    Column("state", String(12), nullable=False),  # queued | fanning_out | fanned_out
    Column("fanned_out_people", Integer, nullable=False),
    Column("device_count", Integer, nullable=False),
    # Keys later features report by (journeys, journey steps, messages): nullable for API sends.
    Column("journey_id", GUID, nullable=True),
    Column("journey_step_id", String(100), nullable=True),
    Column("message_id", GUID, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("fanned_out_at", TS, nullable=True),
    # commercial | transactional: which compliance rules apply (clarion.domain.compliance)
    Column("category", String(16), nullable=False, server_default="commercial"),
    # A send to a segment: fan-out reads its members page by page and appends them to the
    # send's audience (``people_count`` grows as it goes). Null: the audience was given.
    Column("segment_id", GUID, nullable=True),
    # The send's own compliance rules (a journey's quiet-time profile, its exclusion from the
    # frequency cap): ``clarion.domain.sends.SendRules``; null: the org's rules only.
    Column("rules", JSON, nullable=True),
    UniqueConstraint("org_id", "idempotency_key", name="uq_sends_org_idempotency_key"),
    Index("ix_sends_org_created", "org_id", "created_at"),
    Index("ix_sends_journey", "journey_id", "journey_step_id"),  # a journey's report
)

# A send's audience in chunks of ``AUDIENCE_CHUNK`` (5,000) person ids, in the order given:
# fan-out reads a page by key (send_id, chunk), whatever the audience's size, and a send of
# 100,000 people writes 20 rows, not 100,000 (a row per person, with an index to find a
# person's sends, cost ~10 µs per person at send time). JSON text on SQLite (``json_each``
# reads it), an array on PostgreSQL (``unnest`` / ``= ANY``).
AUDIENCE_CHUNK = 5_000
IdList = JSON().with_variant(postgresql.ARRAY(String(36)), "postgresql")

send_audience = Table(
    "send_audience",
    metadata,
    Column("send_id", GUID, ForeignKey("sends.id", ondelete="CASCADE"), nullable=False),
    Column("chunk", Integer, nullable=False),  # the people at positions 5,000·chunk …
    Column("people", IdList, nullable=False),
    PrimaryKeyConstraint("send_id", "chunk", name="pk_send_audience"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", GUID, primary_key=True),  # the apns-id / provider correlation id
    Column("send_id", GUID, ForeignKey("sends.id", ondelete="CASCADE"), nullable=False),
    Column("org_id", GUID, nullable=False),
    Column("app_id", GUID, nullable=False),
    Column("person_id", GUID, nullable=False),
    Column("device_id", GUID, nullable=False),
    Column("platform", String(8), nullable=False),
    # pending | accepted | invalid_token | mismatch | rejected | credential_error | expired
    Column("state", String(16), nullable=False),
    Column("reason", String(100), nullable=True),
    Column("detail", Text, nullable=True),
    Column("provider_id", String(200), nullable=True),
    Column("attempts", Integer, nullable=False),
    # The only device of its person in this send (most people have one): its acceptance
    # counts the person as reached without a "first accepted device" marker (0005).
    Column("sole", Boolean, nullable=False, server_default=false()),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    # No index on ``state``: deliveries are read by id, by send (the unique key's prefix) and
    # by (send, person); every outcome would otherwise rewrite an index entry (0002).
    UniqueConstraint("send_id", "device_id", name="uq_deliveries_send_device"),
)

# Designed push messages (domain.push_messages): the validated document as written, templates
# and placeholders included; app_id is a column too, so deleting the app deletes its messages.
push_messages = Table(
    "push_messages",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("org_id", GUID, ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
    Column("app_id", GUID, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("document", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Index("ix_push_messages_org_name", "org_id", "name"),
)

# A personalised send's message per person, rendered by fan-out with the person's page (the
# devices of one person share it; delivery reads a batch's rows by key). Inline sends have none.
send_messages = Table(
    "send_messages",
    metadata,
    Column("send_id", GUID, ForeignKey("sends.id", ondelete="CASCADE"), nullable=False),
    Column("person_id", GUID, nullable=False),
    Column("message", JSON, nullable=False),
    PrimaryKeyConstraint("send_id", "person_id", name="pk_send_messages"),
)
