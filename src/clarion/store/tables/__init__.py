"""Every table, written once with SQLAlchemy Core. Migrations live in ``store/migrations``.

Portable across SQLite and PostgreSQL: ids are 36-character GUID strings, documents are
``JSON``, queue times are integer epoch milliseconds (cheap to compare, no time zone games).

One module per aggregate, every table on the one ``metadata`` of ``base`` (with the shared
column types); every name is importable from here. The modules are imported so that a table's
foreign keys refer to tables already defined.
"""

from __future__ import annotations

# isort: off
from clarion.store.tables.base import GUID, NAMING, TS, BigId, UTCDateTime, metadata
from clarion.store.tables.org import admin_tokens, api_tokens, apps, org_settings, orgs
from clarion.store.tables.person import people, segment_members, segments
from clarion.store.tables.device import devices, registration_requests
from clarion.store.tables.job import JOBS_DUE_SQL, jobs
from clarion.store.tables.send import (
    AUDIENCE_CHUNK,
    IdList,
    deliveries,
    push_messages,
    send_audience,
    send_messages,
    sends,
)
from clarion.store.tables.interaction import (
    interaction_firsts,
    interactions,
    report_counters,
    report_rollups,
)
from clarion.store.tables.compliance import (
    cap_ledger,
    compliance_events,
    compliance_settings,
    consents,
    held_pushes,
)
from clarion.store.tables.trigger import trigger_firings, triggers
from clarion.store.tables.journey import journey_instances, journey_versions, journeys
# isort: on

__all__ = [
    "AUDIENCE_CHUNK",
    "GUID",
    "JOBS_DUE_SQL",
    "NAMING",
    "TS",
    "BigId",
    "IdList",
    "UTCDateTime",
    "admin_tokens",
    "api_tokens",
    "apps",
    "cap_ledger",
    "compliance_events",
    "compliance_settings",
    "consents",
    "deliveries",
    "devices",
    "held_pushes",
    "interaction_firsts",
    "interactions",
    "jobs",
    "journey_instances",
    "journey_versions",
    "journeys",
    "metadata",
    "org_settings",
    "orgs",
    "people",
    "push_messages",
    "registration_requests",
    "report_counters",
    "report_rollups",
    "segment_members",
    "segments",
    "send_audience",
    "send_messages",
    "sends",
    "trigger_firings",
    "triggers",
]
