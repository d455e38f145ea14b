"""A fan-out page costs the same whatever the audience's size (SQLite and PostgreSQL).

Measured by what the database hands back, not by time: the statements a page runs, the rows
they return and the characters in those rows, for a page in the middle of an 11,000-person
audience and of a 40,000-person one. (The audience was once a JSON array on the send row,
decoded whole by every page: a send cost O(people² / page size).)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, insert

from clarion.bootstrap import Container
from clarion.domain.sends import SendCreate
from clarion.services.fanout import PEOPLE_PER_PAGE, FanOutPage
from clarion.store import tables as t
from tests.factories import world

pytestmark = pytest.mark.integration


@dataclass
class Read:
    statements: int = 0
    rows: int = 0
    chars: int = 0


@contextmanager
def reads(c: Container) -> Iterator[Read]:
    """What the database returns while the block runs. SQLAlchemy's asyncio cursors buffer a
    statement's rows in ``_rows`` as it executes (both aiosqlite and asyncpg)."""
    seen = Read()

    def after(_conn: Any, cursor: Any, _stmt: str, _params: Any, _ctx: Any,
              _many: bool) -> None:
        seen.statements += 1
        rows = list(getattr(cursor, "_rows", ()) or ())
        seen.rows += len(rows)
        seen.chars += sum(len(str(value)) for row in rows for value in row)

    engines = {id(e): e.sync_engine for e in (c.db.read_engine, c.db.write_engine)}
    for engine in engines.values():
        event.listen(engine, "after_cursor_execute", after)
    try:
        yield seen
    finally:
        for engine in engines.values():
            event.remove(engine, "after_cursor_execute", after)


async def _audience(c: Container, org_id: str, app_id: str, size: int) -> list[str]:
    """``size`` people of the org, every tenth with one active Android device."""
    people = [str(uuid.uuid4()) for _ in range(size)]
    now = datetime.now(UTC)
    async with c.db.write() as conn:
        await conn.execute(insert(t.people), [
            {"id": p, "org_id": org_id, "kind": "contact", "email": None, "phone": None,
             "first_name": None, "last_name": None, "time_zone": None, "locale": None,
             "attributes": {}, "created_at": now, "updated_at": now} for p in people])
        await conn.execute(insert(t.devices), [
            {"id": str(uuid.uuid4()), "org_id": org_id, "app_id": app_id, "person_id": p,
             "platform": "android", "token": f"fcm-{p}", "token_hash": uuid.uuid4().hex * 2,
             "web_keys": None, "state": "active", "state_reason": None,
             "state_changed_at": now, "created_at": now, "updated_at": now,
             "last_registered_at": now} for p in people[::10]])
    return people


async def test_a_fan_out_page_reads_the_same_whatever_the_audience_size(
        container: Container) -> None:
    w = await world(container, people_count=0)
    measured: dict[int, Read] = {}
    for size in (11_000, 40_000):
        people = await _audience(container, w.org_id, w.app_id, size)
        accepted = await container.sends.create(w.org_id, SendCreate.model_validate({
            "app_id": w.app_id, "user_ids": people, "message": {"title": "Hi"}}))
        middle = (size // 2 // PEOPLE_PER_PAGE) * PEOPLE_PER_PAGE
        with reads(container) as seen:
            await container.fanout.page(FanOutPage(accepted.send.id, middle))
        measured[size] = seen
        async with container.db.read() as conn:
            made = (await conn.execute(
                t.deliveries.select().where(t.deliveries.c.send_id == accepted.send.id))).all()
        assert len(made) == PEOPLE_PER_PAGE // 10  # the page's people with a device
    small, big = measured[11_000], measured[40_000]
    assert big.statements == small.statements, measured
    assert big.rows <= small.rows + 5, measured  # the same page: same people, same devices
    assert big.chars < 1.5 * small.chars, measured  # nothing the size of the audience
