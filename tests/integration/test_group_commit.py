"""Group commit over SQLite and PostgreSQL: many submissions, few transactions, few jobs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from clarion.clock import SystemClock
from clarion.store.db import Database
from clarion.store.group_commit import GroupCommitWriter
from clarion.store.jobs import JobQueue
from clarion.store.tables import admin_tokens, jobs, orgs
from clarion.store.tasks import Batch

pytestmark = pytest.mark.integration

KIND = "test.kind"


@pytest.fixture
async def writer(db: Database) -> AsyncIterator[GroupCommitWriter]:
    queue = JobQueue(db, SystemClock(), lease_seconds=30, max_attempts=3,
                     done_retention_seconds=0)
    w = GroupCommitWriter(db, queue, max_rows=64)
    w.start()
    try:
        yield w
    finally:
        await w.close()


def _org(org_id: str, name: str | None = None) -> dict[str, Any]:
    return {"id": org_id, "name": name or f"org {org_id[:8]}", "created_at": datetime.now(UTC)}


async def _submit(writer: GroupCommitWriter, org_id: str) -> None:
    await writer.submit([(orgs, [_org(org_id)])], batch=Batch(KIND, [org_id]))


async def _job_ids(db: Database) -> list[list[str]]:
    async with db.read() as conn:
        rows = (await conn.execute(select(jobs.c.payload).where(jobs.c.kind == KIND))).all()
    return [list(row.payload["ids"]) for row in rows]


async def _org_count(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(orgs))).scalar_one())


async def test_concurrent_submissions_share_transactions_and_jobs(
    db: Database, writer: GroupCommitWriter
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(500)]
    await asyncio.gather(*(_submit(writer, org_id) for org_id in ids))

    assert await _org_count(db) == 500
    payloads = await _job_ids(db)
    assert len(payloads) <= 500 // 64 + 2  # one job per commit, commits of <= 64 rows
    covered = [org_id for payload in payloads for org_id in payload]
    assert sorted(covered) == sorted(ids)  # every id exactly once


async def test_a_bad_submission_fails_alone(db: Database, writer: GroupCommitWriter) -> None:
    taken = str(uuid.uuid4())
    async with db.write() as conn:
        await conn.execute(insert(orgs), [_org(taken)])
    good = [str(uuid.uuid4()) for _ in range(40)]

    results = await asyncio.gather(
        *(_submit(writer, org_id) for org_id in good[:20]),
        writer.submit([(orgs, [_org(taken, "duplicate")])], batch=Batch(KIND, ["bad"])),
        *(_submit(writer, org_id) for org_id in good[20:]),
        return_exceptions=True,
    )

    assert [type(r) for r in results].count(IntegrityError) == 1
    assert isinstance(results[20], IntegrityError)
    assert await _org_count(db) == 41
    covered = [org_id for payload in await _job_ids(db) for org_id in payload]
    assert sorted(covered) == sorted(good)  # the failed submission enqueued nothing


async def test_rows_with_other_columns_and_parents_in_the_same_batch(
    db: Database, writer: GroupCommitWriter
) -> None:
    org_id = str(uuid.uuid4())
    now = datetime.now(UTC)

    def token(name: str | None) -> dict[str, Any]:
        row = {"id": str(uuid.uuid4()), "org_id": org_id, "token_hash": uuid.uuid4().hex,
               "created_at": now}
        if name is not None:  # a row naming more columns than the first one of its table
            row |= {"name": name, "revoked_at": now}
        return row

    plain, named = token(None), token("named")
    # Children listed before their parent, and in two submissions batched together.
    await asyncio.gather(
        writer.submit([(admin_tokens, [plain]), (orgs, [_org(org_id)])]),
        writer.submit([(admin_tokens, [named])]),
    )
    async with db.read() as conn:
        rows = (await conn.execute(
            select(admin_tokens.c.id, admin_tokens.c.name, admin_tokens.c.revoked_at)
        )).all()
    by_id = {row.id: row for row in rows}
    assert by_id[plain["id"]].name == "admin"
    assert by_id[plain["id"]].revoked_at is None
    assert by_id[named["id"]].name == "named"
    assert by_id[named["id"]].revoked_at is not None


async def test_close_commits_what_was_submitted(db: Database) -> None:
    queue = JobQueue(db, SystemClock(), lease_seconds=30, max_attempts=3,
                     done_retention_seconds=0)
    writer = GroupCommitWriter(db, queue, max_rows=8)
    writer.start()
    ids = [str(uuid.uuid4()) for _ in range(30)]
    tasks = [asyncio.create_task(_submit(writer, org_id)) for org_id in ids]
    await asyncio.sleep(0)  # every submission is queued, few are committed yet
    await writer.close()
    await asyncio.gather(*tasks)
    assert await _org_count(db) == 30
    with pytest.raises(RuntimeError, match="not running"):
        await _submit(writer, str(uuid.uuid4()))
