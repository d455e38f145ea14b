"""The core the journey runtime (``journey_runtime``) is built on: the parsed journey versions,
entering one person, stepping instances with the pure ``step()`` and queueing the jobs their
actions ask for (a push, a timer).

The methods given a ``conn`` work in the caller's write transaction, on instances the caller
has locked: the instances, their saved states and their jobs commit (or roll back) together.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from clarion.clock import Clock
from clarion.domain.journeys.document import ConditionParser, Journey, any_condition
from clarion.domain.journeys.engine import Action, Entered, Event, Instance, step
from clarion.domain.journeys.validation import parse
from clarion.ids import time_ordered_ids
from clarion.services.journey_jobs import Batch, Queued, as_jobs, queued
from clarion.services.journeys import FactsSource
from clarion.store import journeys as store
from clarion.store.db import Conn, Database
from clarion.store.jobs import JobQueue, NewJob

# Namespace of the instance ids of entries caused by a fire (uuid5 of journey and fire id).
ENTRY_CAUSES = uuid.UUID("6d1f0c2e-3b7a-5e44-9a1c-2f8e0b7d4c61")


class JourneyStepper:
    """Enters people and steps instances of journeys; ``JourneyRuntime`` adds the entries,
    subscribers and job handlers that call it."""

    def __init__(self, db: Database, clock: Clock, queue: JobQueue, *, facts: FactsSource,
                 condition_parser: ConditionParser = any_condition) -> None:
        self._db = db
        self._clock = clock
        self._queue = queue
        self._facts = facts
        self._conditions = condition_parser
        self._parsed: dict[tuple[str, int], Journey] = {}  # versions never change once live

    async def _journey(self, conn: Conn, journey_id: str, version: int) -> Journey | None:
        found = self._parsed.get((journey_id, version))
        if found is None:
            document = await store.document(conn, journey_id, version)
            if document is None:
                return None
            found = self._parsed[(journey_id, version)] = parse(document, self._conditions)
        return found

    async def _later(self, job: NewJob) -> None:
        async with self._db.write() as conn:
            await self._enqueue(conn, [job])

    async def _enter(self, conn: Conn, org_id: str, app_id: str, journey: Journey,
                     journey_id: str, version: int, person_id: str,
                     trigger: Mapping[str, object] | None, now: datetime, *,
                     cause: str | None = None) -> bool:
        latest = await store.latest_entry(conn, journey_id, person_id)
        entry_no = 1
        if latest is not None:
            if journey.reentry == "never" or (journey.reentry == "after_exit"
                                              and not latest.done):
                return False
            entry_no = latest.entry_no + 1
        fresh = Instance(journey_id, version, person_id, entry_no)
        facts = await self._facts.facts(org_id, fresh, trigger)
        inst, actions = step(journey, fresh, Entered(), now, facts)
        # An entry caused by a fire has the fire's instance id: delivered twice, it is refused.
        instance_id = (time_ordered_ids(1, int(now.timestamp() * 1000))[0] if cause is None
                       else str(uuid.uuid5(ENTRY_CAUSES, f"{journey_id}:{cause}")))
        if not await store.insert_instance(conn, instance_id=instance_id, org_id=org_id,
                                           instance=inst, now=now):
            return False  # another worker entered them first, or this fire already did
        await self._apply(conn, org_id, app_id, inst, actions)
        return True

    async def _advance(self, conn: Conn, org_id: str, app_id: str, journey: Journey,
                       inst: Instance, event: Event, trigger: Mapping[str, object] | None,
                       now: datetime) -> None:
        """Step one (locked) instance, save it and queue the jobs its actions ask for."""
        batch = Batch({(inst.person_id, inst.entry_no): inst})
        jobs = await self._move(batch, org_id, app_id, journey,
                                (inst.person_id, inst.entry_no), event, trigger, now)
        await store.save_instances(conn, batch.changed(), now)
        await self._enqueue(conn, jobs)

    async def _move(self, batch: Batch, org_id: str, app_id: str, journey: Journey,
                    person_entry: tuple[str, int], event: Event,
                    trigger: Mapping[str, object] | None, now: datetime) -> list[Queued]:
        """Step an instance of the batch (its latest state: two events of one person in a
        batch apply one after the other): the jobs its actions ask for."""
        inst = batch.current.get(person_entry)
        if inst is None:
            return []
        facts = await self._facts.facts(org_id, inst, trigger)
        moved, actions = step(journey, inst, event, now, facts)
        if moved != inst:
            batch.current[person_entry] = moved
            batch.moved.add(person_entry)
        return queued(org_id, app_id, moved, actions)

    async def _enqueue(self, conn: Conn, items: Sequence[Queued]) -> None:
        await self._queue.enqueue(conn, as_jobs(items))

    async def _apply(self, conn: Conn, org_id: str, app_id: str, inst: Instance,
                     actions: Sequence[Action]) -> None:
        await self._enqueue(conn, queued(org_id, app_id, inst, actions))
