"""The job queue's table and the predicate of its partial index of due jobs."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String, Table, Text, text

from clarion.store.tables.base import BigId, metadata

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
