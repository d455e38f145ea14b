"""``FactsSource`` over the database: what ``step()`` may ask about a person.

* conditions (``when`` of branches, trigger entries, waits and exits) are evaluated by the
  injected ``Evaluate`` (the filter language's, plugged in at bootstrap) on the person's fields
  and attributes and the data of the trigger at hand;
* the time zone is the person's;
* "has the person already opened the push of step X" reads the interactions of this journey
  since the person's entry (an open recorded before the instance reached its wait counts);
* an A/B step's winner is decided by ``clarion.domain.journeys.abtest`` on the variants'
  figures (people sent, people who opened or clicked), read from the report roll-ups of each
  variant's message and kept ``WINNER_TTL`` so a page of people costs one read per test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from clarion.clock import Clock
from clarion.domain.journeys.abtest import Arm, winner
from clarion.domain.journeys.document import Journey, PushStep
from clarion.domain.journeys.engine import Facts, Instance, Variant
from clarion.domain.journeys.validation import parse
from clarion.services.reports import Reports
from clarion.store import journeys as store
from clarion.store import people as people_store
from clarion.store.db import Database

Evaluate = Callable[[str, Mapping[str, object], Mapping[str, object] | None], bool]
"""(condition, the person's fields and attributes, the trigger's data) -> holds."""

WINNER_TTL = timedelta(seconds=60)
_FIELDS = ("id", "kind", "email", "phone", "first_name", "last_name", "time_zone", "locale")


@dataclass(frozen=True, slots=True)
class KnownFacts:
    values: Mapping[str, object]
    trigger: Mapping[str, object] | None
    zone: str | None
    done: frozenset[tuple[str, str]]
    winners: Mapping[str, Variant]
    evaluate: Evaluate

    def matches(self, condition: str) -> bool:
        return self.evaluate(condition, self.values, self.trigger)

    def time_zone(self) -> str | None:
        return self.zone

    def interacted(self, step_id: str, interaction: str) -> bool:
        # A click opens the notification: a wait for an open is answered by a click too.
        return (step_id, interaction) in self.done or (
            interaction == "opened" and (step_id, "clicked") in self.done)

    def winner(self, step_id: str) -> Variant | None:
        return self.winners.get(step_id)


@dataclass
class _Winners:
    at: datetime
    by_step: dict[str, Variant] = field(default_factory=dict)


class StoredFacts:
    def __init__(self, db: Database, clock: Clock, evaluate: Evaluate,
                 reports: Reports | None = None) -> None:
        self._db = db
        self._clock = clock
        self._evaluate = evaluate
        self._reports = reports
        self._journeys: dict[tuple[str, int], Journey] = {}
        self._winners: dict[tuple[str, int], _Winners] = {}

    async def facts(self, org_id: str, instance: Instance,
                    trigger: Mapping[str, object] | None) -> Facts:
        async with self._db.read() as conn:
            person = await people_store.get(conn, org_id, instance.person_id)
            since = await store.entered_at(conn, instance.journey_id, instance.version,
                                           instance.person_id, instance.entry_no)
            done: set[tuple[str, str]] = set()
            if since is not None:  # not stored yet: entering now, nothing happened since
                done = await store.step_interactions(conn, org_id, instance.journey_id,
                                                     instance.person_id, since)
        values: dict[str, object] = {}
        if person is not None:
            values = {name: getattr(person, name) for name in _FIELDS}
            values.update(person.attributes)
        winners = await self._winners_of(org_id, instance)
        return KnownFacts(values=values, trigger=trigger,
                          zone=None if person is None else person.time_zone,
                          done=frozenset(done), winners=winners, evaluate=self._evaluate)

    async def _winners_of(self, org_id: str, instance: Instance) -> Mapping[str, Variant]:
        if self._reports is None:
            return {}
        key = (instance.journey_id, instance.version)
        now = self._clock.now()
        cached = self._winners.get(key)
        if cached is not None and now - cached.at < WINNER_TTL:
            return cached.by_step
        journey = self._journeys.get(key)
        if journey is None:
            async with self._db.read() as conn:
                document = await store.document(conn, *key)
            if document is None:
                return {}
            journey = self._journeys[key] = parse(document)
        found = _Winners(now)
        for step in journey.steps:
            if isinstance(step, PushStep) and step.ab is not None:
                arms = [await self._arm(org_id, message_id, step.ab.metric, now)
                        for message_id in (step.ab.a, step.ab.b)]
                decided = winner(step.ab, arms[0], arms[1], now)
                if decided is not None:
                    found.by_step[step.id] = decided
        self._winners[key] = found
        return found.by_step

    async def _arm(self, org_id: str, message_id: str, metric: str, now: datetime) -> Arm:
        assert self._reports is not None
        report = await self._reports.report(
            org_id, scope="message", scope_id=message_id, since=now - timedelta(days=90),
            until=None, granularity="day", by_platform=False)
        totals = report.totals
        hits = totals.opened if metric == "opened" else totals.clicked
        return Arm(totals.sent_people, hits.unique_people)
