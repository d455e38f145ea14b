"""A request waits for the group commit at most CLARION_DB_WRITE_TIMEOUT_SECONDS from the moment
it is submitted, even when it queued behind a commit that was itself blocked (issue 10,
item 6): it is refused before being tried, so its 503 is true (nothing of it committed)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from clarion.clock import SystemClock
from clarion.errors import DatabaseUnavailable
from clarion.store.db import Database
from clarion.store.group_commit import GroupCommitWriter
from clarion.store.jobs import JobQueue
from clarion.store.migrate import upgrade
from clarion.store.tables import orgs

pytestmark = pytest.mark.integration

TIMEOUT = 2.0


async def test_a_submission_queued_behind_a_blocked_commit_is_refused_in_its_own_time(
        sqlite_url: str) -> None:
    await asyncio.to_thread(upgrade, sqlite_url)
    db = Database(sqlite_url, write_timeout=TIMEOUT)
    queue = JobQueue(db, SystemClock(), lease_seconds=30, max_attempts=3,
                     done_retention_seconds=0)
    writer = GroupCommitWriter(db, queue)
    writer.start()

    async def submit() -> float:
        """Submit one org; return how long until it was refused."""
        t0 = time.monotonic()
        org = {"id": str(uuid.uuid4()), "name": "x", "created_at": datetime.now(UTC)}
        with pytest.raises(DatabaseUnavailable):
            await writer.submit([(orgs, [org])], batch_job=("test.kind", [org["id"]]))
        return time.monotonic() - t0

    try:
        async with db.write():  # this process's own long write holds the writer
            first = asyncio.create_task(submit())
            await asyncio.sleep(TIMEOUT / 2)  # the first commit now waits for the writer
            second = asyncio.create_task(submit())
            waited = await asyncio.gather(first, second)
        # Each within its own timeout (+ scheduling slack); the second one, queued behind the
        # first blocked commit, would otherwise wait for that commit and then for its own.
        assert waited[0] < TIMEOUT + 0.6
        assert waited[1] < TIMEOUT + 0.6, waited
        async with db.read() as conn:
            assert (await conn.execute(select(func.count()).select_from(orgs))).scalar() == 0
    finally:
        await writer.close()
        await db.dispose()
