"""What a journey transition queues, and how it becomes jobs.

``step()``'s actions become push orders (``PushOrder``) and timers (``Timer``); ``as_jobs``
packs them into ``journey.push`` jobs of up to ``PUSH_BATCH`` orders and ``journey.timer`` jobs
of up to as many people due at the same time, each keyed by a digest of its contents: a
transaction done again (a worker died before committing, another worker raced it) produces the
same keys, which the queue keeps once. ``Batch`` holds the instances a batch of events moves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from clarion.domain.journeys.engine import Action, Instance, Schedule, SendPush
from clarion.services.journey_tasks import JOURNEY_PUSH, JOURNEY_TIMER, InstanceKey
from clarion.services.journeys import PushOrder
from clarion.store.jobs import NewJob

PUSH_BATCH = 500  # push orders (or timers) per job


@dataclass(frozen=True, slots=True)
class Timer:
    at_ms: int
    key: InstanceKey


Queued = NewJob | PushOrder | Timer  # what transitions queue (orders and timers batched)


def due_ms(at: datetime) -> int:
    """Epoch milliseconds, rounded up: a job due then runs when ``now >= at`` holds, so a
    timer never wakes a wait a fraction of a millisecond early (it would only be scheduled
    again, under the same job key, which the queue would skip)."""
    return -(-(at - EPOCH) // timedelta(milliseconds=1))


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _instance_key(inst: Instance) -> str:
    return f"{inst.journey_id}:{inst.version}:{inst.person_id}:{inst.entry_no}"


def as_jobs(items: Sequence[Queued]) -> list[NewJob]:
    """The jobs to queue: the ``NewJob`` items as they are, the push orders and timers in
    batches."""
    jobs = [i for i in items if isinstance(i, NewJob)]
    orders = [i for i in items if isinstance(i, PushOrder)]
    due: dict[int, list[InstanceKey]] = {}
    for item in items:
        if isinstance(item, Timer):
            due.setdefault(item.at_ms, []).append(item.key)
    for at_ms, keys in due.items():
        for start in range(0, len(keys), PUSH_BATCH):
            chunk = keys[start:start + PUSH_BATCH]
            digest = hashlib.sha256("\n".join(
                f"{k.journey_id}:{k.version}:{k.person_id}:{k.entry_no}:{k.step_id}"
                for k in chunk).encode()).hexdigest()
            jobs.append(JOURNEY_TIMER.job(chunk, run_at_ms=at_ms,
                                          unique_key=f"jt:{at_ms}:{digest[:60]}"))
    for start in range(0, len(orders), PUSH_BATCH):
        batch = orders[start:start + PUSH_BATCH]
        digest = hashlib.sha256("\n".join(o.key for o in batch).encode()).hexdigest()
        jobs.append(JOURNEY_PUSH.job(batch, unique_key=f"jp:{digest[:60]}"))
    return jobs


def queued(org_id: str, app_id: str, inst: Instance, actions: Sequence[Action]
           ) -> list[Queued]:
    """The push orders and timers of a transition's actions (``inst`` is the instance after
    it). A push order's key names the person's entry, the step and the visit: the
    idempotency key the send path gets."""
    out: list[Queued] = []
    for action in actions:
        visit = inst.path.count(getattr(action, "step_id", ""))
        if isinstance(action, SendPush):
            out.append(PushOrder(
                org_id=org_id, app_id=app_id, journey_id=inst.journey_id,
                version=inst.version, step_id=action.step_id, person_id=inst.person_id,
                entry_no=inst.entry_no, message_id=action.message_id,
                variant=action.variant,
                key=f"jp:{_instance_key(inst)}:{action.step_id}:{visit}"))
        elif isinstance(action, Schedule):
            out.append(Timer(due_ms(action.at), InstanceKey(
                inst.journey_id, inst.version, inst.person_id, inst.entry_no,
                action.step_id)))
        # Await needs no job (the instance row says what it waits for); Done nothing.
    return out


@dataclass
class Batch:
    """Instances loaded for a batch of events, by (person, entry_no), as they move."""

    current: dict[tuple[str, int], Instance]
    moved: set[tuple[str, int]] = field(default_factory=set)
    _people: dict[str, list[tuple[str, int]]] | None = None

    def of(self, person_id: str) -> list[tuple[str, int]]:
        if self._people is None:  # the keys never change: index them once
            self._people = {}
            for key in self.current:
                self._people.setdefault(key[0], []).append(key)
        return self._people.get(person_id, [])

    def changed(self) -> list[Instance]:
        return [self.current[k] for k in self.moved]
