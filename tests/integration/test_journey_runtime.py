"""The journey runtime with fakes for segments, the send path and person facts, on SQLite and
PostgreSQL with a frozen clock: the issue's example runs as written (one ``hello`` per member,
``perks`` for gold openers, ``nudge`` for the others, nothing for non-members, figures that add
up), entry pages and redone work change nothing, and two workers share a journey without
sending anything twice."""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from clarion.bootstrap import Container, build
from clarion.clock import FrozenClock
from clarion.domain.interactions import InteractionEvent, InteractionKind, Source
from clarion.domain.journeys.engine import LATE_INTERACTION_GRACE, Facts, Instance, Variant
from clarion.services import journey_runtime
from clarion.services.journey_runtime import JourneyRuntime
from clarion.services.journey_tasks import (
    JOURNEY_ENTER,
    JOURNEY_ENTRY,
    JOURNEY_PUSH,
    JOURNEY_TIMER,
    EntryPage,
)
from clarion.services.journeys import PushOrder
from clarion.store.migrate import upgrade
from clarion.worker.loop import Worker
from clarion.worker.tasks import on
from tests.conftest import make_settings
from tests.factories import World, world
from tests.unit.test_journey_document import EXAMPLE

pytestmark = pytest.mark.integration

GRACE_S = LATE_INTERACTION_GRACE.total_seconds()


@dataclass
class FakeSegments:
    members_of: dict[str, list[str]]
    pages: int = 0

    async def members(self, org_id: str, segment_id: str, after: str | None,
                      limit: int) -> list[str]:
        self.pages += 1
        ids = sorted(self.members_of.get(segment_id, []))
        return [i for i in ids if after is None or i > after][:limit]

    async def contains(self, org_id: str, segment_id: str,
                       person_ids: Sequence[str]) -> set[str]:
        return set(person_ids) & set(self.members_of.get(segment_id, []))


@dataclass
class FakePush:
    sent: list[PushOrder] = field(default_factory=list)

    async def send(self, orders: Sequence[PushOrder]) -> None:
        self.sent.extend(orders)


@dataclass
class PersonFacts:
    gold: bool
    opened: bool
    trigger: Mapping[str, object] | None

    def matches(self, condition: str) -> bool:
        if condition == "tier eq 'gold'":
            return self.gold
        if condition == "cart_total gt 50":
            return float(str((self.trigger or {}).get("cart_total", 0))) > 50
        raise AssertionError(condition)

    def time_zone(self) -> str | None:
        return None

    def interacted(self, step_id: str, interaction: str) -> bool:
        return False

    def winner(self, step_id: str) -> Variant | None:
        return None


@dataclass
class FakeFacts:
    gold: set[str]

    async def facts(self, org_id: str, instance: Instance,
                    trigger: Mapping[str, object] | None) -> Facts:
        return PersonFacts(instance.person_id in self.gold, False, trigger)


@dataclass
class Rig:
    c: Container
    clock: FrozenClock
    w: World
    runtime: JourneyRuntime
    segments: FakeSegments
    push: FakePush

    def worker(self, name: str) -> Worker:
        handlers = dict([
            on(JOURNEY_ENTRY, lambda calls: self._each(self.runtime.entry_page, calls)),
            on(JOURNEY_TIMER, lambda calls: self.runtime.timers(
                [k for c in calls for k in c.args])),
            on(JOURNEY_PUSH, lambda calls: self.runtime.pushes(
                [o for c in calls for o in c.args])),
            on(JOURNEY_ENTER, lambda calls: self._each(self.runtime.enter_later, calls))])
        return Worker(self.c.queue, handlers, concurrency=2, batch_size=50, poll_seconds=0.05,
                      worker_id=name)

    @staticmethod
    async def _each(fn: object, calls: Sequence[object]) -> None:
        for call in calls:
            await fn(call.args)  # type: ignore[operator, attr-defined]

    async def drain(self) -> int:
        return await self.worker("w1").run_until_idle()


@pytest.fixture
async def rig(db_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    await asyncio.to_thread(upgrade, db_url)
    clock = FrozenClock(datetime(2027, 3, 1, 9, tzinfo=UTC))
    c = build(make_settings(db_url, tmp_path), clock=clock)
    await c.start()
    try:
        w = await world(c, people_count=8)
        segments = FakeSegments({"seg-1": w.person_ids[:6]})
        push = FakePush()
        runtime = JourneyRuntime(c.db, clock, c.queue, segments=segments, push=push,
                                 facts=FakeFacts(gold=set(w.person_ids[:2])))
        yield Rig(c, clock, w, runtime, segments, push)
    finally:
        await c.close()


def _event(r: Rig, person: str, journey_id: str, step: str, n: int,
           kind: InteractionKind = InteractionKind.OPENED) -> InteractionEvent:
    return InteractionEvent(
        delivery_id=f"d{n}", send_id="s", org_id=r.w.org_id, app_id=r.w.app_id,
        person_id=person, device_id="dev", platform="ios", journey_id=journey_id,
        journey_step_id=step, message_id=None, id=n, kind=kind, source=Source.CIJ_EVENTS,
        first=True, occurred_at=r.clock.now())


async def _example(r: Rig, **changes: object) -> str:
    doc = copy.deepcopy(EXAMPLE)
    doc["app_id"] = r.w.app_id
    doc.update(changes)
    created = await r.c.journeys.create(r.w.org_id, doc)
    await r.c.journeys.start(r.w.org_id, created.id)
    return created.id


async def test_the_example_runs_as_written(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journey_runtime, "ENTRY_PAGE", 4)  # pages: 4 + 2 members
    r = rig
    jid = await _example(r)
    await r.runtime.started(jid)
    await r.runtime.started(jid)  # twice: one entry all the same
    await r.drain()
    members = r.w.person_ids[:6]
    assert sorted(o.person_id for o in r.push.sent) == sorted(members)
    assert {(o.step_id, o.message_id, o.journey_id) for o in r.push.sent} == {
        ("hello", "m-hello", jid)}
    assert r.segments.pages == 2

    gold_opener, silver_opener = members[0], members[2]
    await r.runtime.on_interactions([_event(r, gold_opener, jid, "hello", 1),
                                     _event(r, silver_opener, jid, "hello", 2,
                                            InteractionKind.CLICKED)])
    # Redelivered (the bus is at least once): nobody waits any more, nothing happens.
    await r.runtime.on_interactions([_event(r, gold_opener, jid, "hello", 1)])
    await r.drain()
    r.clock.advance(8 + GRACE_S)  # the deadline, and the grace for late opens
    await r.drain()
    sent = Counter((o.person_id, o.step_id) for o in r.push.sent)
    assert sent[(gold_opener, "perks")] == 1
    assert not any(p == silver_opener and s != "hello" for p, s in sent)
    nudged = {p for p, s in sent if s == "nudge"}
    assert nudged == set(members) - {gold_opener, silver_opener}
    assert max(sent.values()) == 1
    assert not any(p in r.w.person_ids[6:] for p, _ in sent)  # outside the segment: nothing

    report = await r.c.journeys.report(r.w.org_id, jid)
    rows = {s.id: s for s in report.steps}
    assert (report.people, report.inside) == (6, 0)
    assert rows["hello"].inflow == rows["opened"].inflow == 6
    assert (rows["nudge"].processed, rows["tier"].inflow, rows["perks"].processed) == (4, 2, 1)
    for s in report.steps:
        assert s.inflow == s.processing + s.processed + s.exit

    # Entering again changes nothing (re-entry "never"), even as a new round.
    await r.runtime.started(jid)
    await r.runtime.entry_page(EntryPage(jid, 1, None, 7))
    await r.drain()
    assert (await r.c.journeys.report(r.w.org_id, jid)).people == 6


async def test_two_workers_share_a_journey_without_duplicates(rig: Rig,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    monkeypatch.setattr(journey_runtime, "ENTRY_PAGE", 2)
    r = rig
    jid = await _example(r)
    await r.runtime.started(jid)
    await asyncio.gather(r.worker("a").run_until_idle(), r.worker("b").run_until_idle())
    r.clock.advance(8 + GRACE_S)  # the deadline, and the grace for late opens
    await asyncio.gather(r.worker("a").run_until_idle(), r.worker("b").run_until_idle())
    sent = Counter((o.person_id, o.step_id) for o in r.push.sent)
    assert set(sent.values()) == {1}
    assert sorted(p for p, s in sent if s == "hello") == sorted(r.w.person_ids[:6])
    assert sorted(p for p, s in sent if s == "nudge") == sorted(r.w.person_ids[:6])


async def test_a_fire_delivered_twice_enters_once_even_with_reentry_always(rig: Rig) -> None:
    """The bus delivers at least once: a fire delivered again (its publication job re-run
    after a crash that followed the entry's commit) must not enter the person a second time,
    even where re-entry is ``always``; a new fire does."""
    r = rig
    jid = await _example(r, entry={"type": "trigger", "trigger": "cart_abandoned"},
                         reentry="always")
    p1 = r.w.person_ids[0]
    org = r.w.org_id
    assert await r.runtime.on_trigger(org, "cart_abandoned", p1, {}, cause="fire-1") == 1
    assert await r.runtime.on_trigger(org, "cart_abandoned", p1, {}, cause="fire-1") == 0
    assert await r.runtime.on_trigger(org, "cart_abandoned", p1, {}, cause="fire-2") == 1
    await r.drain()
    assert (await r.c.journeys.report(org, jid)).people == 2
    assert Counter(o.step_id for o in r.push.sent) == {"hello": 2}


async def test_triggers_enter_exit_and_stop(rig: Rig) -> None:
    r = rig
    jid = await _example(r, entry={"type": "trigger", "trigger": "cart_abandoned",
                                   "when": "cart_total gt 50"},
                         exit_triggers=["purchased"], reentry="after_exit")
    p1, p2 = r.w.person_ids[:2]
    org = r.w.org_id
    assert await r.runtime.on_trigger(org, "cart_abandoned", p1, {"cart_total": 20}) == 0
    assert await r.runtime.on_trigger(org, "cart_abandoned", p1, {"cart_total": 80}) == 1
    assert await r.runtime.on_trigger(org, "cart_abandoned", p1, {"cart_total": 90}) == 0
    assert await r.runtime.on_trigger(org, "cart_abandoned", p2, {"cart_total": 90}) == 1
    await r.runtime.on_trigger(org, "purchased", p1, {})
    await r.drain()
    report = await r.c.journeys.report(org, jid)
    opened = report.steps[1]
    assert (opened.processing, dict(opened.exit_reasons)) == (1, {"exit_trigger:purchased": 1})
    # After the exit, p1 may enter again (after_exit): entry 2.
    assert await r.runtime.on_trigger(org, "cart_abandoned", p1, {"cart_total": 90}) == 1
    await r.c.journeys.stop(org, jid)
    r.clock.advance(8 + GRACE_S)  # the deadline, and the grace for late opens
    before = len(r.push.sent)
    await r.drain()
    assert len(r.push.sent) == before  # stopped: the timers do nothing, nobody is nudged
    report = await r.c.journeys.report(org, jid)
    assert report.inside == 0
    assert report.steps[1].exit_reasons["journey_stopped"] == 2


async def test_going_live_queues_the_segment_entry(rig: Rig) -> None:
    """Wired as bootstrap will wire it: the service tells the runtime when a journey goes
    live (start, resume, a new live version), and each version enters its members once."""
    from clarion.services.journeys import Journeys

    r = rig
    service = Journeys(r.c.db, r.clock, went_live=r.runtime.started)
    doc = copy.deepcopy(EXAMPLE)
    doc["app_id"] = r.w.app_id
    created = await service.create(r.w.org_id, doc)
    await service.start(r.w.org_id, created.id)
    await service.pause(r.w.org_id, created.id)
    await service.resume(r.w.org_id, created.id)
    await r.drain()
    assert sorted(o.person_id for o in r.push.sent) == sorted(r.w.person_ids[:6])
    r.segments.members_of["seg-1"] = r.w.person_ids  # two more members, then a new version
    await service.update(r.w.org_id, created.id, doc)
    await r.drain()
    hello = Counter(o.person_id for o in r.push.sent if o.step_id == "hello")
    assert set(hello.values()) == {1}  # reentry "never": across versions too
    assert sorted(hello) == sorted(r.w.person_ids)
    assert {o.version for o in r.push.sent if o.person_id in r.w.person_ids[6:]} == {2}


async def test_trigger_entries_wait_for_the_rate_limit_and_paused_journeys_see_exits(
        rig: Rig) -> None:
    r = rig
    org = r.w.org_id
    jid = await _example(r, entry={"type": "trigger", "trigger": "go"},
                         entry_limit_per_hour=2, exit_triggers=["purchased"])
    people = r.w.person_ids[:3]
    entered = [await r.runtime.on_trigger(org, "go", p, {}) for p in people]
    assert entered == [1, 1, 0]  # the third waits for the hour to make room
    await r.c.journeys.pause(org, jid)
    await r.runtime.on_trigger(org, "purchased", people[0], {})  # paused: exits still apply
    report = await r.c.journeys.report(org, jid)
    assert report.steps[1].exit_reasons == {"exit_trigger:purchased": 1}
    await r.c.journeys.resume(org, jid)
    r.clock.advance(60)
    await r.drain()
    assert (await r.c.journeys.report(org, jid)).people == 2  # still within the hour
    r.clock.advance(3600)
    await r.drain()
    report = await r.c.journeys.report(org, jid)
    assert report.people == 3
    hello = Counter(o.person_id for o in r.push.sent if o.step_id == "hello")
    assert hello == Counter(people)


async def test_a_paused_journey_holds_its_pushes_until_resumed(rig: Rig) -> None:
    r = rig
    org = r.w.org_id
    jid = await _example(r)
    await r.runtime.started(jid)
    await r.worker("w").run_until_idle()  # entered, hello sent
    await r.c.journeys.pause(org, jid)
    gold = r.w.person_ids[0]
    await r.runtime.on_interactions([_event(r, gold, jid, "hello", 1)])
    await r.drain()
    assert [o.step_id for o in r.push.sent if o.person_id == gold] == ["hello"]  # held
    r.clock.advance(120)
    await r.drain()
    assert [o.step_id for o in r.push.sent if o.person_id == gold] == ["hello"]  # still
    await r.c.journeys.resume(org, jid)
    r.clock.advance(60)
    await r.drain()
    sent = Counter((o.person_id, o.step_id) for o in r.push.sent)
    assert sent[(gold, "perks")] == 1
    assert sum(1 for _, s in sent if s == "nudge") == 5  # the others' waits ended after
    assert max(sent.values()) == 1
