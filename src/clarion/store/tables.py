"""Every table, written once with SQLAlchemy Core. Migrations live in ``store/migrations``.

Portable across SQLite and PostgreSQL: ids are 36-character GUID strings, documents are
``JSON``, queue times are integer epoch milliseconds (cheap to compare, no time zone games).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

GUID = String(36)


class UTCDateTime(TypeDecorator[datetime]):
    """Time-zone-aware UTC datetimes on both databases.

    PostgreSQL keeps the zone (timestamptz); SQLite stores text and hands back naive values,
    which would then compare and serialise differently. Values are converted to UTC going in
    and marked UTC coming out, so every layer above sees the same aware datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column: pass an aware datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


TS = UTCDateTime()
BigId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite rowid alias needs INTEGER

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

JOBS_DUE_SQL = "state IN ('queued', 'running')"

jobs = Table(
    "jobs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("unique_key", String(200), nullable=True, unique=True),
    Column("state", String(10), nullable=False),  # queued | running | done | dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("run_at", BigInteger, nullable=False),  # epoch ms
    Column("lease_until", BigInteger, nullable=True),  # epoch ms
    Column("locked_by", String(64), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # Accepted client requests the job carries (group-commit jobs), 0 for the others: the
    # backlog cap sums it over the waiting jobs (clarion.store.backlog).
    Column("items", Integer, nullable=False, default=0, server_default="0"),
    Index("ix_jobs_state_run_at", "state", "run_at"),
    # The claim query's index: due jobs in run_at order, so `ORDER BY run_at LIMIT n` reads n
    # entries even with a million rows waiting. A running job's run_at is its lease expiry
    # (see clarion.store.jobs), so one range scan also finds expired leases. The predicate
    # is literal SQL that the claim query repeats verbatim: SQLite and PostgreSQL only use a
    # partial index when the query's WHERE visibly implies it. ``items`` rides along so that
    # the backlog's sum reads this index alone.
    Index("ix_jobs_due", "run_at", "items", sqlite_where=text(JOBS_DUE_SQL),
          postgresql_where=text(JOBS_DUE_SQL)),
)

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

# ------------------------------------------------------------------ issue 14 A: push messages

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

# An org's settings, read by placeholders with source "org": one JSON object per org.
org_settings = Table(
    "org_settings",
    metadata,
    Column("org_id", GUID, ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True),
    Column("settings", JSON, nullable=False),
    Column("updated_at", TS, nullable=False),
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

# ---- compliance (clarion.domain.compliance): quiet times, frequency caps, consent ------------

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

# --- Segments and triggers (0007) -------------------------------------------------------------

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

# ------------------------------------------------------------------------ journeys (0008)

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
