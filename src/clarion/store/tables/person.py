"""People and the segments that group them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from clarion.store.tables.base import GUID, TS, metadata

people = Table(
    "people",
    metadata,
    # The key is (org_id, id): a person id is unique within its org only, so two orgs (staging
    # and production, say) can import the same CIJ contacts, and no org can learn by a 409 that
    # an id exists in another one. Leading with org_id also serves keyset paging by id in an org.
    Column("id", GUID, nullable=False),
    Column("org_id", GUID, ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),  # contact | lead | profile
    Column("email", String(320), nullable=True),  # stored lower-cased
    Column("phone", String(20), nullable=True),  # E.164
    Column("first_name", String(200), nullable=True),
    Column("last_name", String(200), nullable=True),
    Column("time_zone", String(64), nullable=True),
    Column("locale", String(35), nullable=True),
    Column("attributes", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    PrimaryKeyConstraint("org_id", "id", name="pk_people"),
    Index("ix_people_org_email", "org_id", "email"),
    Index("ix_people_org_phone", "org_id", "phone"),
    Index("ix_people_org_kind", "org_id", "kind"),
)

segments = Table(
    "segments",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("org_id", GUID, ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(8), nullable=False),  # dynamic | static
    Column("filter", Text, nullable=True),  # dynamic segments: clarion.domain.filters text
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Index("ix_segments_org", "org_id", "id"),
)

# Members of static segments, read by (segment, person) in person-id order: keyset pages and
# membership checks are range scans of the key.
segment_members = Table(
    "segment_members",
    metadata,
    Column("segment_id", GUID, ForeignKey("segments.id", ondelete="CASCADE"), nullable=False),
    Column("person_id", GUID, nullable=False),
    PrimaryKeyConstraint("segment_id", "person_id", name="pk_segment_members"),
)
