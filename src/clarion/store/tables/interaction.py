"""Interactions (delivered, opened, clicked, dismissed) and the report roll-ups."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
)

from clarion.store.tables.base import GUID, TS, BigId, metadata

interactions = Table(
    "interactions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("org_id", GUID, nullable=False),
    Column("app_id", GUID, nullable=False),
    Column("send_id", GUID, nullable=False),
    Column("delivery_id", GUID, nullable=False),
    Column("person_id", GUID, nullable=False),
    Column("device_id", GUID, nullable=False),
    Column("platform", String(8), nullable=False),
    Column("kind", String(12), nullable=False),  # delivered | opened | clicked | dismissed
    Column("source", String(16), nullable=False),  # cij_events | cij_legacy | link
    Column("first", Boolean, nullable=False),  # first of its kind for this delivery
    Column("journey_id", GUID, nullable=True),
    Column("journey_step_id", String(100), nullable=True),
    Column("message_id", GUID, nullable=True),
    Column("occurred_at", TS, nullable=False),
    Index("ix_interactions_org_time", "org_id", "occurred_at"),
    Index("ix_interactions_person", "org_id", "person_id", "occurred_at"),
    Index("ix_interactions_send", "send_id"),
)

# First interaction of a kind per delivery (unique devices) and per (send, person) (unique
# people): an insert that conflicts is a repeat, which counts in totals but not in uniques.
interaction_firsts = Table(
    "interaction_firsts",
    metadata,
    Column("scope", String(80), primary_key=True),  # "d:<delivery id>" or "p:<send>:<person>"
    Column("kind", String(12), primary_key=True),
)

# Roll-ups: one row per (org, app, send, journey keys, platform, hour, metric). Reports sum
# these instead of scanning interaction rows, so they stay fast at any volume.
report_counters = Table(
    "report_counters",
    metadata,
    Column("org_id", GUID, primary_key=True),
    Column("app_id", GUID, primary_key=True),
    Column("send_id", GUID, primary_key=True),
    Column("platform", String(8), primary_key=True),  # "" when not per device (inflow)
    Column("hour", BigInteger, primary_key=True),  # epoch seconds // 3600
    Column("metric", String(48), primary_key=True),
    Column("journey_id", GUID, nullable=True),
    Column("journey_step_id", String(100), nullable=True),
    Column("message_id", GUID, nullable=True),
    Column("value", BigInteger, nullable=False),
    Index("ix_report_counters_org_hour", "org_id", "hour"),
    Index("ix_report_counters_app_hour", "app_id", "hour"),
)

# Coarse roll-ups, written beside every ``report_counters`` increment (clarion.store.rollups):
# the same sums without the send dimension, once per scope a report can ask for — the whole org
# (scope "org", scope_id ""), an app, and once journeys exist a journey, a journey step
# ("<journey id>/<step id>") and a message. A report over any of these scopes is then one range
# scan of the primary key, (org, scope, scope_id, hour …), over a few thousand rows whatever
# the volume of sends and interactions; send reports read ``report_counters`` (its key leads
# with org, app, send). WITHOUT ROWID on SQLite: the key is the table, so that scan reads no
# second b-tree.
report_rollups = Table(
    "report_rollups",
    metadata,
    Column("org_id", GUID, nullable=False),
    Column("scope", String(16), nullable=False),  # org | app | journey | journey_step | message
    Column("scope_id", String(140), nullable=False),  # "" for scope "org"
    Column("hour", BigInteger, nullable=False),  # epoch seconds // 3600
    Column("platform", String(8), nullable=False),  # "" when not per device
    Column("metric", String(48), nullable=False),
    Column("value", BigInteger, nullable=False),
    PrimaryKeyConstraint("org_id", "scope", "scope_id", "hour", "platform", "metric",
                         name="pk_report_rollups"),
    sqlite_with_rowid=False,
)
