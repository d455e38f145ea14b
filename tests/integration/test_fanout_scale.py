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
from sqlalchemy import insert

from clarion.bootstrap import Container
from clarion.domain.push_messages import PushMessageIn
from clarion.domain.sends import SendCreate
from clarion.services.fanout import PEOPLE_PER_PAGE, SEND_FANOUT, FanOutPage
from clarion.services.journey_wiring import OutcomeEntries
from clarion.store import sends as send_store
from clarion.store import tables as t
from tests.factories import drain, world
from tests.query_plans import full_scans, listening, statements

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

    with listening(c, after):
        yield seen


async def _audience(c: Container, org_id: str, app_id: str, size: int, *,
                    tier: str | None = None) -> list[str]:
    """``size`` people of the org, every tenth with one active Android device (attribute
    ``tier`` when given)."""
    people = [str(uuid.uuid4()) for _ in range(size)]
    now = datetime.now(UTC)
    async with c.db.write() as conn:
        await conn.execute(insert(t.people), [
            {"id": p, "org_id": org_id, "kind": "contact", "email": None, "phone": None,
             "first_name": None, "last_name": None, "time_zone": None, "locale": None,
             "attributes": {} if tier is None else {"tier": tier}, "created_at": now,
             "updated_at": now} for p in people])
        await conn.execute(insert(t.devices), [
            {"id": str(uuid.uuid4()), "org_id": org_id, "app_id": app_id, "person_id": p,
             "platform": "android", "token": f"fcm-{p}", "token_hash": uuid.uuid4().hex * 2,
             "web_keys": None, "state": "active", "state_reason": None,
             "state_changed_at": now, "created_at": now, "updated_at": now,
             "last_registered_at": now} for p in people[::10]])
    return people


async def _deliveries(c: Container, send_id: str) -> int:
    async with c.db.read() as conn:
        return len((await conn.execute(
            t.deliveries.select().where(t.deliveries.c.send_id == send_id))).all())


@pytest.fixture(autouse=True)
def _outcome_interest_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages compare statement counts: the org's cached push-outcome interest must not expire
    between them (it is read again after ``TTL`` seconds, which a loaded machine can take)."""
    monkeypatch.setattr(OutcomeEntries, "TTL", 3600.0)


async def test_a_fan_out_page_reads_the_same_whatever_the_audience_size(
        container: Container) -> None:
    w = await world(container, people_count=0)
    measured: dict[int, Read] = {}
    for size in (11_000, 40_000):
        people = await _audience(container, w.org_id, w.app_id, size)
        accepted = await container.sends.create(w.org_id, SendCreate.model_validate({
            "app_id": w.app_id, "user_ids": people, "message": {"title": "Hi"}}))
        middle = (size // 2 // PEOPLE_PER_PAGE) * PEOPLE_PER_PAGE
        # The first page runs first, as in a send: the first page of an org also asks (once
        # per few seconds, cached) whether push outcomes are wanted, which is no page's cost.
        await container.fanout.page(FanOutPage(accepted.send.id, 0))
        before = await _deliveries(container, accepted.send.id)
        with reads(container) as seen:
            await container.fanout.page(FanOutPage(accepted.send.id, middle))
        measured[size] = seen
        made = await _deliveries(container, accepted.send.id) - before
        assert made == PEOPLE_PER_PAGE // 10  # the page's people with a device
    small, big = measured[11_000], measured[40_000]
    assert big.statements == small.statements, measured
    assert big.rows <= small.rows + 5, measured  # the same page: same people, same devices
    assert big.chars < 1.5 * small.chars, measured  # nothing the size of the audience


async def _page_starting_chunk(c: Container, send_id: str, chunk: int) -> Read:
    """Run the send's pages in order up to the one that starts ``chunk`` (the one that reads
    the segment), and measure that one."""
    while True:
        async with c.db.read() as conn:
            send = await send_store.get(conn, send_id)
        assert send is not None and send.state != "fanned_out"
        if send.fanned_out_people == chunk * PEOPLE_PER_PAGE:
            with reads(c) as seen:
                await c.fanout.page(FanOutPage(send_id, send.fanned_out_people))
            return seen
        await c.fanout.page(FanOutPage(send_id, send.fanned_out_people))


async def test_a_segment_send_page_reads_the_same_whatever_the_segment_size(
        container: Container) -> None:
    """A send to a segment reads its members by keyset, one chunk per page that starts a
    chunk: the page starting the second chunk (5,000 members in both) costs the same in a
    segment of 11,000 or of 40,000."""
    measured: dict[int, Read] = {}
    for size in (11_000, 40_000):
        w = await world(container, people_count=0)
        await _audience(container, w.org_id, w.app_id, size, tier="gold")
        await _audience(container, w.org_id, w.app_id, 1_000, tier="tin")  # not members
        segment = await container.segments.create(w.org_id, {
            "name": "Gold", "filter": "tier eq 'gold'"})
        accepted = await container.sends.create(w.org_id, SendCreate.model_validate({
            "app_id": w.app_id, "segment_id": segment.id, "message": {"title": "Hi"}}))
        assert accepted.send.user_ids == [] and accepted.send.segment_id == segment.id
        measured[size] = await _page_starting_chunk(container, accepted.send.id, 1)
    small, big = measured[11_000], measured[40_000]
    assert big.statements == small.statements, measured
    # 5,000 members each and their devices (about 500: ids are random, so the share of
    # members with a device in a chunk varies by a few), nothing the size of the segment
    assert abs(big.rows - small.rows) < 0.05 * small.rows, measured
    assert big.chars < 1.1 * small.chars, measured


async def test_a_segment_send_reaches_every_member_once_and_no_one_else(
        container: Container) -> None:
    """11,000 members (three chunks, the last one short), 1,000 people outside: one delivery
    per member with a device, each member counted once, nobody outside reached."""
    w = await world(container, people_count=0)
    members = await _audience(container, w.org_id, w.app_id, 11_000, tier="gold")
    outside = await _audience(container, w.org_id, w.app_id, 1_000, tier="tin")
    segment = await container.segments.create(w.org_id, {
        "name": "Gold", "filter": "tier eq 'gold'"})
    accepted = await container.sends.create(w.org_id, SendCreate.model_validate({
        "app_id": w.app_id, "segment_id": segment.id, "message": {"title": "Hi"}}))
    await drain(container, kinds=[SEND_FANOUT.name])
    async with container.db.read() as conn:
        made = (await conn.execute(t.deliveries.select().where(
            t.deliveries.c.send_id == accepted.send.id))).all()
        send = await send_store.get(conn, accepted.send.id)
        audience = await send_store.audience(conn, accepted.send.id)
    reached = [d.person_id for d in made]
    assert len(reached) == len(set(reached)) == len(members[::10])
    assert set(reached) == set(members[::10])
    assert not set(reached) & set(outside)
    assert send is not None and send.state == "fanned_out"
    assert sorted(audience) == sorted(members) and send.people_count == 11_000
    read = await container.sends.get(w.org_id, accepted.send.id, limit=1)
    assert read.people == 11_000 and read.user_ids == []


async def test_a_segment_deleted_during_its_send_ends_the_send_with_who_it_reached(
        container: Container) -> None:
    w = await world(container, people_count=0)
    await _audience(container, w.org_id, w.app_id, 7_000, tier="gold")
    segment = await container.segments.create(w.org_id, {
        "name": "Gold", "filter": "tier eq 'gold'"})
    accepted = await container.sends.create(w.org_id, SendCreate.model_validate({
        "app_id": w.app_id, "segment_id": segment.id, "message": {"title": "Hi"}}))
    await _page_starting_chunk(container, accepted.send.id, 0)
    await container.segments.delete(w.org_id, segment.id)
    await drain(container, kinds=[SEND_FANOUT.name])
    async with container.db.read() as conn:
        send = await send_store.get(conn, accepted.send.id)
    assert send is not None and send.state == "fanned_out"
    assert send.people_count == PEOPLE_PER_PAGE  # the first chunk, read before the delete


async def test_a_screened_personalised_page_reads_no_table_whole(
        container: Container) -> None:
    """A page of a send (personalised, and inline) under quiet times, a frequency cap and an
    opt-out searches by key only: no statement of it scans a table (a scan of ``people`` once made
    each page cost the size of the whole instance)."""
    w = await world(container, people_count=0)
    people = await _audience(container, w.org_id, w.app_id, 8_000)
    await container.compliance.set_quiet_times(w.org_id, {
        "name": "Nights", "general": {"commercial": {
            "windows": [{"start": "23:59", "end": "00:00"}]}}})
    await container.compliance.set_frequency_caps(w.org_id, {
        "push": {"per_24h": 3, "per_7d": None, "per_30d": None}})
    await container.compliance.set_consent(w.org_id, w.app_id, people[0], opted_in=False,
                                           source="test")
    message = await container.messages.create(w.org_id, PushMessageIn.model_validate({
        "name": "hello", "app_id": w.app_id, "title": "Hello {{Name}}", "body": "x",
        "placeholders": {"Name": {"source": "audience", "field": "first_name",
                                  "default": "there"}}}))
    run: list[tuple[str, Any]] = []
    for body in ({"message_id": message.id}, {"app_id": w.app_id, "message": {"title": "Hi"}}):
        accepted = await container.sends.create(w.org_id, SendCreate.model_validate({
            **body, "user_ids": people}))
        await container.fanout.page(FanOutPage(accepted.send.id, 0))  # the org's caches warm
        async with container.db.read() as conn:
            send = await send_store.get(conn, accepted.send.id)
        assert send is not None
        before = await _deliveries(container, send.id)
        with statements(container) as seen:
            await container.fanout.page(FanOutPage(send.id, send.fanned_out_people))
        assert await _deliveries(container, send.id) > before
        run += seen
    assert len(run) > 10
    assert await full_scans(container, run) == []
