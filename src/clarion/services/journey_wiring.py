"""The journey runtime's ports, implemented by the real features (issue 14 part D).

``clarion.services.journey_runtime`` is written against three Protocols
(``clarion.services.journeys``); here they meet the features that own the work:

* ``SegmentSource`` is the ``Segments`` service itself (keyset pages, membership tests);
* ``SendsPush`` (``JourneyPush``, in ``clarion.services.journey_sends``) turns a job's push
  orders into personalised sends;
* ``FilterFacts`` (``FactsSource``) is ``StoredFacts`` (time zone, interactions since the
  entry, A/B winners) with conditions evaluated by the filter language
  (``clarion.domain.filters``: parsed once per text, evaluated on ``person_facts``);
  ``in_segment(…)`` and ``has_device(…)`` are answered by ``Segments.contains`` and the
  person's active devices, read only when a condition of the journey names them.

``subscribe`` registers the runtime on the event bus: opens and clicks wake waits (and
interaction entries), ``trigger.*`` and ``person.created`` reach trigger entries, waits,
exit triggers and goals (only in orgs whose live or paused journeys name the trigger, and not
for fires from before those journeys started). Conditions after a trigger entry (a branch
after a wait) read the entering fire's data too.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from clarion.domain import filters
from clarion.domain.filter_evaluation import evaluate as evaluate_filter
from clarion.domain.filter_evaluation import person_facts
from clarion.domain.interactions import InteractionEvent
from clarion.domain.journeys.engine import Facts, Instance
from clarion.domain.people import PersonRead
from clarion.domain.triggers import PERSON_CREATED, PersonCreatedEvent, TriggerEvent
from clarion.errors import NotFound
from clarion.services.devices import Devices
from clarion.services.events import EventBus
from clarion.services.journey_facts import KnownFacts, StoredFacts
from clarion.services.journey_runtime import JourneyRuntime
from clarion.services.journey_tasks import InstanceKey
from clarion.services.journey_versions import Versions, condition
from clarion.services.segments import Segments
from clarion.store import journey_facts as facts_store
from clarion.store import journeys as journey_store
from clarion.store import people as people_store
from clarion.store.db import Database

log = logging.getLogger(__name__)

ACTIVE = "active"  # the device state of a currently valid device


def _values(person: PersonRead) -> dict[str, object]:
    """A person's fields and attributes as ``StoredFacts`` gives them to conditions."""
    values: dict[str, object] = {name: getattr(person, name) for name in filters.PERSON_FIELDS}
    values |= person.attributes
    return values


class PagePeople:
    """``SegmentSource``: the ``Segments`` service, keeping the people of the latest entry
    pages (read in one statement per page) for ``FilterFacts``: entering a page of 500 then
    costs one read of its people instead of one per person. Bounded: a few pages."""

    KEEP = 4 * 500
    FRESH_SECONDS = 30.0  # a page is entered right after it is read; older reads are not used

    def __init__(self, db: Database, segments: Segments) -> None:
        self._db = db
        self._segments = segments
        self._people: OrderedDict[tuple[str, str], tuple[float, PersonRead]] = OrderedDict()

    async def members(self, org_id: str, segment_id: str, after: str | None,
                      limit: int) -> list[str]:
        members = await self._segments.members(org_id, segment_id, after, limit)
        async with self._db.read() as conn:
            found = await people_store.get_many(conn, org_id, members)
        now = time.monotonic()
        for person_id, person in found.items():
            self._people[(org_id, person_id)] = (now, person)
            self._people.move_to_end((org_id, person_id))
        while len(self._people) > self.KEEP:
            self._people.popitem(last=False)
        return members

    async def contains(self, org_id: str, segment_id: str,
                       person_ids: Sequence[str]) -> set[str]:
        return await self._segments.contains(org_id, segment_id, person_ids)

    def get(self, org_id: str, person_id: str) -> PersonRead | None:
        found = self._people.get((org_id, person_id))
        if found is None or time.monotonic() - found[0] > self.FRESH_SECONDS:
            return None
        return found[1]


class FilterFacts:
    """``FactsSource``: ``StoredFacts`` with the filter language's conditions; after a trigger
    entry, conditions read the entering fire's data even when a timer or an open moves the
    person on."""

    def __init__(self, db: Database, stored: StoredFacts, versions: Versions,
                 segments: Segments, devices: Devices, pages: PagePeople | None = None
                 ) -> None:
        self._db = db
        self._stored = stored
        self._versions = versions
        self._segments = segments
        self._devices = devices
        self._pages = pages
        # Prefetched for a batch of timers (``prefetched``): (journey, version, person,
        # entry) -> (values, zone, done); each entry is used once.
        self._batch: dict[tuple[str, int, str, int],
                          tuple[dict[str, object], str | None, frozenset[tuple[str, str]]]] = {}

    @contextlib.asynccontextmanager
    async def prefetched(self, keys: Sequence[InstanceKey]) -> AsyncIterator[None]:
        """Read what the timers ``keys`` will ask (people, entries, opens and clicks) in a
        few statements per journey version, for the ``timers`` call inside; A/B journeys
        and anything not found take the per-person path."""
        groups: dict[tuple[str, int | None], set[str]] = {}
        for key in keys:
            groups.setdefault((key.journey_id, key.version), set()).add(key.person_id)
        async with self._prefetched(groups):
            yield

    @contextlib.asynccontextmanager
    async def prefetched_events(self, events: Sequence[InteractionEvent]
                                ) -> AsyncIterator[None]:
        """As ``prefetched``, for the instances a batch of opens and clicks may wake (every
        version and entry of those people in those journeys)."""
        groups: dict[tuple[str, int | None], set[str]] = {}
        for event in events:
            if event.journey_id is not None:
                groups.setdefault((event.journey_id, None), set()).add(event.person_id)
        async with self._prefetched(groups):
            yield

    @contextlib.asynccontextmanager
    async def _prefetched(self, groups: Mapping[tuple[str, int | None], set[str]]
                          ) -> AsyncIterator[None]:
        mine: list[tuple[str, int, str, int]] = []
        for (journey_id, version), person_set in groups.items():
            people_ids = sorted(person_set)
            async with self._db.read() as conn:
                state = await journey_store.state_of(conn, journey_id)
                if state is None:
                    continue
                org_id = state[0]
                entries = await facts_store.entered_at(conn, journey_id, version, people_ids)
                if not entries:
                    continue
                people = await people_store.get_many(conn, org_id, people_ids)
                seen = await facts_store.step_interactions(
                    conn, org_id, journey_id, people_ids, min(entries.values()))
            for (entry_version, person_id, entry_no), at in entries.items():
                person = people.get(person_id)
                if person is None or (await self._versions.info(journey_id, entry_version)).ab:
                    continue
                done = frozenset((step, kind) for step, kind, when in seen.get(person_id, [])
                                 if when >= at)
                cache_key = (journey_id, entry_version, person_id, entry_no)
                self._batch[cache_key] = (_values(person), person.time_zone, done)
                mine.append(cache_key)
        try:
            yield
        finally:
            for cache_key in mine:
                self._batch.pop(cache_key, None)

    async def facts(self, org_id: str, instance: Instance,
                    trigger: Mapping[str, object] | None) -> Facts:
        info = await self._versions.info(instance.journey_id, instance.version)
        if trigger is None and info.entry_trigger is not None and instance.status != "new":
            key = (instance.person_id, instance.entry_no)
            trigger = (await self._versions.trigger_data(
                org_id, instance.journey_id, instance.version, [key])).get(key)
        person = None
        if instance.status == "new" and info.segment_entry and not info.ab \
                and self._pages is not None:
            person = self._pages.get(org_id, instance.person_id)
        batched = None if instance.status == "new" else self._batch.pop(
            (instance.journey_id, instance.version, instance.person_id, instance.entry_no),
            None)
        base: Facts
        if person is not None:
            # Entering from a segment page whose people were read together: nothing has
            # happened since the entry (it is not even stored), and no A/B winner is needed.
            base = KnownFacts(values=_values(person), trigger=trigger, zone=person.time_zone,
                              done=frozenset(), winners={}, evaluate=evaluate_plain)
        elif batched is not None:
            values, zone, done = batched
            base = KnownFacts(values=values, trigger=trigger, zone=zone, done=done,
                              winners={}, evaluate=evaluate_plain)
        else:
            base = await self._stored.facts(org_id, instance, trigger)
        member_of: set[str] = set()
        for segment_id in info.segments:
            try:
                if await self._segments.contains(org_id, segment_id, [instance.person_id]):
                    member_of.add(segment_id)
            except NotFound:  # a segment deleted since: nobody is in it
                log.warning("journey %s names segment %s, which no longer exists",
                            instance.journey_id, segment_id)
        device_apps: set[str] = set()
        if info.apps:
            devices = await self._devices.page(org_id, person_id=instance.person_id,
                                               state=ACTIVE, limit=1000)
            device_apps = {d.app_id for d in devices}

        def evaluate(text: str, values: Mapping[str, object],
                     data: Mapping[str, object] | None) -> bool:
            # ``values`` are the person's fields and attributes (StoredFacts); the filter
            # language reads them as person_facts does: fields over attributes, trigger data
            # over both.
            return evaluate_filter(condition(text), person_facts(values, values, data),
                                   device_apps=device_apps, segments=member_of)

        assert isinstance(base, KnownFacts)
        return replace(base, evaluate=evaluate)


def evaluate_plain(text: str, values: Mapping[str, object],
                   data: Mapping[str, object] | None) -> bool:
    """``StoredFacts``' own evaluator (no segment or device lookups: ``FilterFacts``
    replaces it with one that has them)."""
    return evaluate_filter(condition(text), person_facts(values, values, data))


class OutcomeEntries:
    """Whether an org has a live journey entered on a push sent or not sent: the publishers of
    push outcomes ask it (per delivery batch), so it is remembered for ``TTL`` seconds. A
    journey started less than that ago may miss the outcomes of those seconds."""

    TTL = 5.0

    def __init__(self, versions: Versions) -> None:
        self._versions = versions
        self._known: dict[str, tuple[float, bool]] = {}

    async def __call__(self, org_id: str) -> bool:
        now = time.monotonic()
        found = self._known.get(org_id)
        if found is not None and now - found[0] < self.TTL:
            return found[1]
        wanted = await self._versions.outcome_entries(org_id)
        self._known[org_id] = (now, wanted)
        return wanted


def subscribe(events: EventBus, runtime: JourneyRuntime, versions: Versions,
              facts: FilterFacts) -> None:
    """Register the runtime's subscribers (call in ``bootstrap.build``: every process agrees
    on what is published, and every worker dispatches to them). Trigger fires and created
    people reach the runtime only for orgs whose live or paused journeys name that trigger:
    an import of a million people into an org without such a journey costs one read per
    batch, not a transaction per person."""

    async def interactions(batch: Sequence[InteractionEvent]) -> None:
        async with facts.prefetched_events(batch):  # a few reads per batch, not per person
            await runtime.on_interactions(batch)

    async def fire(fires: Sequence[tuple[str, str, str, Mapping[str, object],
                                         datetime | None, str]]) -> None:
        wanted: dict[str, dict[str, datetime]] = {}
        for org_id, name, person_id, data, fired_at, cause in fires:
            if org_id not in wanted:
                wanted[org_id] = await versions.triggers_of_org(org_id)
            since = wanted[org_id].get(name)
            # A fire published before every journey naming it started (the bus delivers
            # about a second later) is not theirs.
            if since is not None and (fired_at is None or fired_at >= since):
                await runtime.on_trigger(org_id, name, person_id, data, cause=cause)

    async def triggers(batch: Sequence[TriggerEvent]) -> None:
        await fire([(e.org_id, e.trigger, e.person_id, e.data, e.fired_at, e.id)
                    for e in batch])

    async def people(batch: Sequence[PersonCreatedEvent]) -> None:
        await fire([(e.org_id, PERSON_CREATED, e.person_id, {}, None,
                     f"{PERSON_CREATED}:{e.person_id}") for e in batch])

    events.subscribe("interaction.opened", interactions, name="journeys.opened")
    events.subscribe("interaction.clicked", interactions, name="journeys.clicked")
    events.subscribe("trigger.*", triggers, name="journeys.triggers")
    events.subscribe("push.*", runtime.on_push_outcomes, name="journeys.push_outcomes")
    events.interest("push", OutcomeEntries(versions))
    events.subscribe(PERSON_CREATED, people, name="journeys.person_created")
