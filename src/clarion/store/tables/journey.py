"""Journeys, their versions (the documents) and the people inside them."""

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
    UniqueConstraint,
)

from clarion.store.tables.base import GUID, TS, metadata

# A journey and its life cycle; its documents are in ``journey_versions``. ``version`` is the
# newest document, ``live_version`` the one people enter now (None until started): editing a
# live journey adds a version, and people inside finish the one they entered.
journeys = Table(
    "journeys",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("org_id", GUID, ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
    Column("app_id", GUID, nullable=False),
    Column("name", String(200), nullable=False),
    Column("state", String(8), nullable=False),  # draft | live | paused | stopped
    Column("version", Integer, nullable=False),
    Column("live_version", Integer, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("started_at", TS, nullable=True),
    Column("stopped_at", TS, nullable=True),
    Index("ix_journeys_org", "org_id", "created_at", "id"),
)

journey_versions = Table(
    "journey_versions",
    metadata,
    Column("journey_id", GUID, ForeignKey("journeys.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("document", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
    PrimaryKeyConstraint("journey_id", "version", name="pk_journey_versions"),
)

# One person's position in one version (clarion.domain.journeys.engine.Instance). The unique
# key makes entering twice harmless: a second worker's insert conflicts. ``path`` lists the
# step visits, from which the per-step report is read.
journey_instances = Table(
    "journey_instances",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("org_id", GUID, nullable=False),
    Column("journey_id", GUID, ForeignKey("journeys.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("person_id", GUID, nullable=False),
    Column("entry_no", Integer, nullable=False),
    Column("status", String(8), nullable=False),  # new | active | waiting | done
    Column("step_id", String(100), nullable=True),
    Column("waiting_until", TS, nullable=True),
    Column("waiting_kind", String(12), nullable=True),  # interaction | trigger
    Column("waiting_key", String(100), nullable=True),  # push step id or trigger name
    Column("waiting_interaction", String(8), nullable=True),
    Column("variants", JSON, nullable=False),
    Column("path", JSON, nullable=False),
    Column("done_reason", String(120), nullable=True),
    Column("goal_met", Boolean, nullable=False),
    Column("entered_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("journey_id", "version", "person_id", "entry_no",
                     name="uq_journey_instances_entry"),
    Index("ix_journey_instances_person", "journey_id", "person_id", "entry_no"),
    Index("ix_journey_instances_entered", "journey_id", "entered_at"),  # entry rate limit
    Index("ix_journey_instances_waiting", "journey_id", "waiting_kind", "waiting_key",
          "person_id"),
)
