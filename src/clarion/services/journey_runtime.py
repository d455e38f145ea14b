"""The journey runtime: people enter, instances advance by ``step()``, timers and pushes are
typed jobs.

Everything that changes an instance happens in one write transaction: lock the instance row,
run the pure ``step()``, save the instance and enqueue the jobs its actions ask for (a push, a
timer). So a worker that dies mid-step changes nothing (the transaction rolls back and the
event or job comes again), and two workers on PostgreSQL serialise on the row: the second sees
the instance already moved and ``step()`` asks for nothing. A push job is therefore created
once per person, entry and visit of a push step; its unique key (``jp:…``) says so to the
queue too, and is the idempotency key handed to the send path. That core (entering one person,
stepping instances, queueing their jobs) is ``JourneyStepper`` (``journey_stepping``); the
runtime adds the segment entry pages, the subscribers and the job handlers.

The parts owned elsewhere are reached through the small Protocols of ``services.journeys``,
so this runs with fakes in tests and the real segments, sends and person facts once they are
wired at bootstrap: ``SegmentSource`` (segment members in keyset pages, membership tests),
``JourneyPush`` (send a journey step's message to every valid device of a person, carrying
journey and step) and ``FactsSource`` (the ``Facts`` that ``step()`` asks: conditions, time
zone, interactions, A/B winners).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from clarion.clock import Clock
from clarion.domain.interactions import InteractionEvent
from clarion.domain.journeys.document import (
    ConditionParser,
    InteractionEntry,
    Journey,
    SegmentEntry,
    TriggerEntry,
    any_condition,
)
from clarion.domain.journeys.engine import (
    Action,
    Entered,
    Instance,
    Interaction,
    TimerFired,
    TriggerFired,
    step,
)
from clarion.domain.journeys.records import JourneyRead
from clarion.domain.sends import PushOutcomeEvent
from clarion.services.journey_jobs import Batch, Queued, Timer, as_jobs, due_ms, queued
from clarion.services.journey_stepping import JourneyStepper
from clarion.services.journey_tasks import (
    JOURNEY_ENTER,
    JOURNEY_ENTRY,
    EntryPage,
    InstanceKey,
    LateEntry,
)
from clarion.services.journeys import FactsSource, JourneyPush, PushOrder, SegmentSource
from clarion.store import journeys as store
from clarion.store.db import Conn, Database
from clarion.store.jobs import JobQueue, NewJob

ENTRY_PAGE = 500  # people entered per transaction
PAUSED_RECHECK = timedelta(seconds=60)  # a paused journey's due work looks again this late
NEW_MEMBERS_POLL = timedelta(minutes=15)  # once_then_new: how often new members are looked for
RATE_RECHECK = timedelta(minutes=1)


class JourneyRuntime(JourneyStepper):
    def __init__(self, db: Database, clock: Clock, queue: JobQueue, *,
                 segments: SegmentSource, push: JourneyPush, facts: FactsSource,
                 condition_parser: ConditionParser = any_condition) -> None:
        super().__init__(db, clock, queue, facts=facts, condition_parser=condition_parser)
        self._segments = segments
        self._push = push

    # ------------------------------------------------------------------------- entering

    async def started(self, journey_id: str) -> None:
        """Call after a segment journey goes live: queue the first page of its entry."""
        async with self._db.write() as conn:
            state = await store.state_of(conn, journey_id)
            if state is None or state[2] != "live" or state[3] is None:
                return
            journey = await self._journey(conn, journey_id, state[3])
            if journey is not None and isinstance(journey.entry, SegmentEntry):
                page = EntryPage(journey_id, state[3], None, 0)
                await self._enqueue(conn, [JOURNEY_ENTRY.job(
                    page, unique_key=f"je:{journey_id}:{state[3]}:0:")])

    async def entry_page(self, page: EntryPage) -> None:
        """Enter one page of the segment's members and queue the next page (or the next
        round), in one transaction: a worker dying mid-page redoes just that page, and the
        instances' unique key makes the redo harmless."""
        now = self._clock.now()
        async with self._db.read() as conn:
            state = await store.state_of(conn, page.journey_id)
            journey = await self._journey(conn, page.journey_id, page.version)
        if state is None or journey is None or state[3] != page.version:
            return  # deleted, or a newer version took over (it has its own entry)
        org_id, app_id, life, _ = state
        if life == "stopped":
            return
        entry = journey.entry
        assert isinstance(entry, SegmentEntry)
        if life == "paused":
            await self._later(JOURNEY_ENTRY.job(page, run_at_ms=due_ms(now + PAUSED_RECHECK),
                                                unique_key=self._page_key(page, now)))
            return
        limit = ENTRY_PAGE
        if journey.entry_limit_per_hour is not None:
            async with self._db.read() as conn:
                entered = await store.entries_since(conn, page.journey_id,
                                                    now - timedelta(hours=1))
            limit = min(limit, journey.entry_limit_per_hour - entered)
            if limit <= 0:
                await self._later(JOURNEY_ENTRY.job(page, run_at_ms=due_ms(now + RATE_RECHECK),
                                                    unique_key=self._page_key(page, now)))
                return
        members = await self._segments.members(org_id, entry.segment_id, page.after, limit)
        excluded: set[str] = set()
        for segment_id in journey.exclude_segment_ids:
            excluded |= await self._segments.contains(org_id, segment_id, members)
        async with self._db.write() as conn:
            jobs = await self._enter_many(conn, org_id, app_id, journey, page.journey_id,
                                          page.version,
                                          [p for p in members if p not in excluded], now)
            follow = self._next_page(page, entry, members, limit, now)
            await self._enqueue(conn, jobs if follow is None else [*jobs, follow])

    async def _enter_many(self, conn: Conn, org_id: str, app_id: str, journey: Journey,
                          journey_id: str, version: int, person_ids: Sequence[str],
                          now: datetime) -> list[Queued]:
        """Enter a page of people with a few statements (one read of their previous entries,
        one insert of the instances): the jobs their first steps ask for."""
        latest = await store.latest_entries(conn, journey_id, person_ids)
        moved: list[tuple[Instance, list[Action]]] = []
        for person_id in person_ids:
            entry_no = 1
            if person_id in latest:
                previous, done = latest[person_id]
                if journey.reentry == "never" or (journey.reentry == "after_exit"
                                                  and not done):
                    continue
                entry_no = previous + 1
            fresh = Instance(journey_id, version, person_id, entry_no)
            facts = await self._facts.facts(org_id, fresh, None)
            moved.append(step(journey, fresh, Entered(), now, facts))
        inserted = await store.insert_instances(conn, org_id, [i for i, _ in moved], now)
        jobs: list[Queued] = []
        for inst, actions in moved:
            if (inst.person_id, inst.entry_no) in inserted:
                jobs += queued(org_id, app_id, inst, actions)
        return jobs

    def _page_key(self, page: EntryPage, now: datetime) -> str:
        return f"je:{page.journey_id}:{page.version}:{page.round}:{page.after or ''}:{due_ms(now)}"

    def _next_page(self, page: EntryPage, entry: SegmentEntry, members: list[str], limit: int,
                   now: datetime) -> NewJob | None:
        if len(members) >= limit and members:
            follow = EntryPage(page.journey_id, page.version, members[-1], page.round)
            return JOURNEY_ENTRY.job(follow, unique_key=(
                f"je:{page.journey_id}:{page.version}:{page.round}:{members[-1]}"))
        if entry.schedule.kind == "once":
            return None
        every = entry.schedule.every if entry.schedule.kind == "repeat" else NEW_MEMBERS_POLL
        assert every is not None
        again = EntryPage(page.journey_id, page.version, None, page.round + 1)
        return JOURNEY_ENTRY.job(again, run_at_ms=due_ms(now + every), unique_key=(
            f"je:{page.journey_id}:{page.version}:{page.round + 1}:"))

    # ---------------------------------------------------------------------- advancing

    async def timer(self, key: InstanceKey) -> None:
        """A wait's time is up (or a wait for an interaction reached its limit)."""
        await self.timers([key])

    async def timers(self, keys: Sequence[InstanceKey]) -> None:
        """Timers of a claimed batch, in one transaction: per journey version one read of
        the instances and one write of those that moved."""
        now = self._clock.now()
        async with self._db.write() as conn:
            jobs: list[Queued] = []
            groups: dict[tuple[str, int], list[InstanceKey]] = {}
            for key in keys:
                groups.setdefault((key.journey_id, key.version), []).append(key)
            for (journey_id, version), group in groups.items():
                state = await store.state_of(conn, journey_id)
                if state is None or state[2] == "stopped":
                    continue
                if state[2] == "paused":
                    # Looked at again later (a new due time: new jobs, not the done ones).
                    jobs += [Timer(due_ms(now + PAUSED_RECHECK), key) for key in group]
                    continue
                journey = await self._journey(conn, journey_id, version)
                if journey is None:
                    continue
                found = await store.instances_of(conn, journey_id, version,
                                                 sorted({k.person_id for k in group}),
                                                 lock=True)
                batch = Batch({(i.person_id, i.entry_no): i for i in found})
                for key in group:
                    jobs += await self._move(batch, state[0], state[1], journey,
                                             (key.person_id, key.entry_no),
                                             TimerFired(key.step_id), None, now)
                await store.save_instances(conn, batch.changed(), now)
            await self._enqueue(conn, jobs)

    async def on_interactions(self, events: Sequence[InteractionEvent]) -> None:
        """Subscriber of ``interaction.*``: wake the instances waiting for an open or click
        of their journey's push step, and enter people into journeys whose entry is that
        interaction; one transaction per batch. Idempotent: a redelivered event finds nobody
        waiting any more (and re-entry rules hold for entries)."""
        now = self._clock.now()
        wakes: dict[tuple[str, str], list[InteractionEvent]] = {}
        for event in events:
            if event.journey_id is not None and event.journey_step_id is not None \
                    and event.kind.value in ("opened", "clicked"):
                wakes.setdefault((event.journey_id, event.journey_step_id), []).append(event)
        async with self._db.write() as conn:
            jobs: list[Queued] = []
            for (journey_id, step_id), group in wakes.items():
                state = await store.state_of(conn, journey_id)
                if state is None:
                    continue
                waiting = await store.waiting_of(conn, journey_id, "interaction", step_id,
                                                 sorted({e.person_id for e in group}),
                                                 lock=True)
                by_version: dict[int, Batch] = {}
                for inst in waiting:
                    by_version.setdefault(inst.version, Batch({})).current[
                        (inst.person_id, inst.entry_no)] = inst
                for version, batch in by_version.items():
                    journey = await self._journey(conn, journey_id, version)
                    if journey is None:
                        continue
                    for event in group:
                        for person_entry in batch.of(event.person_id):
                            jobs += await self._move(
                                batch, state[0], state[1], journey, person_entry,
                                Interaction(step_id, event.kind.value, event.occurred_at),
                                None, now)
                    await store.save_instances(conn, batch.changed(), now)
            entries: dict[str, list[tuple[JourneyRead, Journey]]] = {}
            for event in events:
                if event.org_id not in entries:
                    entries[event.org_id] = await self._interaction_entries(conn, event.org_id)
                for row, journey in entries[event.org_id]:
                    if _enters(journey, event.kind.value, event.message_id, event.journey_id,
                               event.journey_step_id):
                        assert row.live_version is not None
                        await self._enter(conn, row.org_id, row.app_id, journey, row.id,
                                          row.live_version, event.person_id, None, now,
                                          cause=f"interaction:{event.id}")
            await self._enqueue(conn, jobs)

    async def on_push_outcomes(self, events: Sequence[PushOutcomeEvent]) -> None:
        """Subscriber of ``push.*``: enter people into the live journeys whose entry is
        that push being sent (or not sent); one transaction per batch, and none for an org
        without such a journey. Idempotent: the entry is keyed by send, person and outcome."""
        now = self._clock.now()
        orgs = {e.org_id for e in events}
        async with self._db.read() as conn:
            wanted = {org: [(row, j) for row, j in await self._interaction_entries(conn, org)
                            if isinstance(j.entry, InteractionEntry)
                            and j.entry.interaction in ("sent", "not_sent")] for org in orgs}
        if not any(wanted.values()):
            return
        async with self._db.write() as conn:
            for event in events:
                for row, journey in wanted[event.org_id]:
                    if _enters(journey, event.outcome, event.message_id, event.journey_id,
                               event.journey_step_id):
                        assert row.live_version is not None
                        await self._enter(conn, row.org_id, row.app_id, journey, row.id,
                                          row.live_version, event.person_id, None, now,
                                          cause=f"{event.topic}:{event.send_id}:"
                                                f"{event.person_id}")

    async def _interaction_entries(self, conn: Conn, org_id: str
                                   ) -> list[tuple[JourneyRead, Journey]]:
        out = []
        for row in await store.live_of_org(conn, org_id):
            journey = await self._journey(conn, row.id, row.live_version or row.version)
            if journey is not None and isinstance(journey.entry, InteractionEntry):
                out.append((row, journey))
        return out

    async def on_trigger(self, org_id: str, name: str, person_id: str,
                         data: Mapping[str, object], *, cause: str | None = None) -> int:
        """A trigger fired for a person: hand it to the person's instances in live and paused
        journeys (exit triggers, goals, waits for a trigger), and enter the live journeys it
        starts (``when`` holding; past the entry rate limit, the entry waits its turn).
        ``cause`` (the fire's id) keys the entries it makes: the same fire delivered again
        enters nobody again, whatever the journey's re-entry rule. Returns how many journeys
        the person entered now."""
        now = self._clock.now()
        entered = 0
        async with self._db.write() as conn:
            for row in await store.live_of_org(conn, org_id, ("live", "paused")):
                await self._trigger_one(conn, row, name, person_id, data, now)
                assert row.live_version is not None
                journey = await self._journey(conn, row.id, row.live_version)
                entry = None if journey is None else journey.entry
                if row.state != "live" or not isinstance(entry, TriggerEntry) \
                        or entry.trigger != name:
                    continue
                assert journey is not None
                if entry.when is not None:
                    probe = Instance(row.id, row.live_version, person_id)
                    if not (await self._facts.facts(org_id, probe, data)).matches(entry.when):
                        continue
                later = LateEntry(row.id, row.live_version, person_id, dict(data), cause)
                entered += await self._enter_or_defer(conn, row, journey, later, now)
        return entered

    async def _enter_or_defer(self, conn: Conn, row: JourneyRead, journey: Journey,
                              later: LateEntry, now: datetime) -> bool:
        limit = journey.entry_limit_per_hour
        if limit is not None and await store.entries_since(
                conn, row.id, now - timedelta(hours=1)) >= limit:
            await self._enqueue(conn, [JOURNEY_ENTER.job(
                later, run_at_ms=due_ms(now + RATE_RECHECK),
                unique_key=f"jn:{row.id}:{later.person_id}:{due_ms(now)}")])
            return False
        return await self._enter(conn, row.org_id, row.app_id, journey, row.id, later.version,
                                 later.person_id, later.data, now, cause=later.cause)

    async def enter_later(self, later: LateEntry) -> None:
        """A trigger entry held back by the entry rate limit: enter now, or wait again."""
        now = self._clock.now()
        async with self._db.write() as conn:
            state = await store.state_of(conn, later.journey_id)
            if state is None or state[2] == "stopped" or state[3] != later.version:
                return
            row = await store.get(conn, state[0], later.journey_id)
            journey = await self._journey(conn, later.journey_id, later.version)
            if row is None or journey is None:
                return
            if state[2] == "paused":
                await self._enqueue(conn, [JOURNEY_ENTER.job(
                    later, run_at_ms=due_ms(now + PAUSED_RECHECK),
                    unique_key=f"jn:{row.id}:{later.person_id}:{due_ms(now)}")])
                return
            await self._enter_or_defer(conn, row, journey, later, now)

    async def _trigger_one(self, conn: Conn, row: JourneyRead, name: str, person_id: str,
                           data: Mapping[str, object], now: datetime) -> None:
        for inst in await store.inside(conn, row.id, person_id, lock=True):
            journey = await self._journey(conn, row.id, inst.version)
            if journey is not None:
                await self._advance(conn, row.org_id, row.app_id, journey, inst,
                                    TriggerFired(name), data, now)

    async def pushes(self, orders: Sequence[PushOrder]) -> None:
        """Run journey push jobs: the orders of journeys stopped since are dropped (CIJ sends
        nothing after a stop), those of paused journeys wait for the resume (looked at again
        every ``PAUSED_RECHECK``); the others go to the send path together, each keyed by
        ``order.key``."""
        async with self._db.read() as conn:
            states = {jid: await store.state_of(conn, jid)
                      for jid in {o.journey_id for o in orders}}
        live: list[PushOrder] = []
        held: list[PushOrder] = []
        for order in orders:
            state = states[order.journey_id]
            if state is not None and state[2] != "stopped":
                (held if state[2] == "paused" else live).append(order)
        if held:
            due = due_ms(self._clock.now() + PAUSED_RECHECK)
            async with self._db.write() as conn:
                await self._queue.enqueue(conn, [
                    replace(job, run_at_ms=due, unique_key=f"{job.unique_key}:{due}")
                    for job in as_jobs(held)])
        if live:
            await self._push.send(live)


def _enters(journey: Journey, interaction: str, message_id: str | None,
            journey_id: str | None, step_id: str | None) -> bool:
    """That interaction (opened, clicked, sent, not sent) with that push is the journey's
    entry."""
    entry = journey.entry
    if not isinstance(entry, InteractionEntry) or entry.interaction != interaction:
        return False
    if entry.message_id is not None:
        return entry.message_id == message_id
    return entry.journey_id == journey_id and entry.step == step_id
