"""Every task's handler, bound once to the container's services.

A task is declared next to the service that runs it (``clarion.store.tasks.Task``); here each
is bound to that service's method with ``on(task, handler)``, which decodes every claimed
job's typed arguments before calling the handler. The worker loop only sees job kinds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from clarion.bootstrap import Container
from clarion.domain.registration import PendingRequest
from clarion.services.delivery import DELIVER
from clarion.services.events import (
    INTERACTION_EVENTS,
    PERSON_EVENTS,
    PUSH_EVENTS,
    TRIGGER_EVENTS,
    OutcomePublication,
    PeoplePublication,
    Publication,
    TriggerPublication,
)
from clarion.services.fanout import RELEASE_HELD, SEND_FANOUT, FanOutPage, ReleaseHeld
from clarion.services.interactions import RECORD, Accepted
from clarion.services.journey_tasks import (
    JOURNEY_ENTER,
    JOURNEY_ENTRY,
    JOURNEY_PUSH,
    JOURNEY_TIMER,
    EntryPage,
    InstanceKey,
    LateEntry,
)
from clarion.services.journeys import PushOrder
from clarion.services.recording import RecordJob, record_groups
from clarion.services.registration import REGISTRATION_PROCESS, ProcessRequests
from clarion.services.webhooks import REGISTRATION_CALLBACK, CallbackPost
from clarion.store.jobs import Job
from clarion.store.tasks import Task
from clarion.worker.loop import Bounded, Handler
from clarion.worker.pacing import Pacer, never_busy

A = TypeVar("A")

# Periodic housekeeping (clarion.runtime schedules it): purge finished requests and jobs.
MAINTENANCE_PURGE: Task[None] = Task("maintenance.purge", lambda _: {}, lambda _: None)


@dataclass(frozen=True, slots=True)
class Call(Generic[A]):
    """One claimed job: its typed arguments, and the job (id, attempts) itself."""

    args: A
    job: Job


def on(task: Task[A], handler: Callable[[Sequence[Call[A]]], Awaitable[None]], *,
       max_jobs: int | None = None) -> tuple[str, Handler]:
    """``task``'s kind with a loop handler decoding each job for ``handler``; with
    ``max_jobs``, a ``Bounded`` handler (at most that many jobs per call, claimed only for
    free slots)."""

    async def run(jobs: Sequence[Job]) -> None:
        await handler([Call(task.args(job), job) for job in jobs])

    return task.name, run if max_jobs is None else Bounded(run, max_jobs)


def build_handlers(c: Container, *, with_api: bool = False) -> dict[str, Handler]:
    # Only a worker sharing its process with the API yields to it (clarion.worker.pacing).
    pacer = Pacer(c.writer.busy if with_api else never_busy,
                  share=c.settings.worker_share_under_load)

    async def process(calls: Sequence[Call[ProcessRequests]]) -> None:
        by_attempt: dict[int, list[str | PendingRequest]] = {}
        for call in calls:
            by_attempt.setdefault(call.args.attempt, []).extend(call.args.items)
        for attempt, items in by_attempt.items():
            for i in range(0, len(items), 500):  # bounded statements, whatever the job sizes
                chunk = items[i:i + 500]
                # Only work nobody waits on yields to the API: untracked requests without a
                # callback (they ride in the job). A tracked request's status is being polled.
                unwatched = all(not isinstance(item, str) for item in chunk)
                async with pacer.step() if unwatched else contextlib.nullcontext():
                    await c.processor.process(ProcessRequests(chunk, attempt))

    async def callback(calls: Sequence[Call[CallbackPost]]) -> None:
        # Concurrently: one slow receiver must not hold up the others (each is tried once).
        # A callback fails alone: deliver never raises, and nothing it could raise is let out
        # (a raise would dead-letter the batch, delivered callbacks included, and a `clarion
        # jobs retry` would send those twice).
        await asyncio.gather(*(c.callbacks.deliver(call.args) for call in calls),
                             return_exceptions=True)

    async def fan_out(calls: Sequence[Call[FanOutPage]]) -> None:
        for call in calls:
            await c.fanout.page(call.args)

    async def release(calls: Sequence[Call[ReleaseHeld]]) -> None:
        for call in calls:
            await c.fanout.release(call.args)

    async def deliver(calls: Sequence[Call[list[str]]]) -> None:
        await c.delivery.deliver([i for call in calls for i in call.args])

    async def record(calls: Sequence[Call[list[Accepted]]]) -> None:
        # Accepted interaction reports: nobody waits on them, so they yield to the API.
        jobs = [RecordJob(call.job.id, call.args) for call in calls]
        for group in record_groups(jobs):
            async with pacer.step():
                await c.recorder.record(group)

    async def publish(calls: Sequence[Call[Publication]]) -> None:
        # Jobs naming one subscriber (retries) run alone; the others are merged into one
        # dispatch so subscribers get big batches.
        merged: list[int] = []
        for call in calls:
            if call.args.only is None:
                merged.extend(call.args.ids)
            else:
                await c.events.dispatch(call.args, attempt=call.job.attempts)
        async with pacer.step():
            await c.events.dispatch(Publication(merged))

    async def publish_triggers(calls: Sequence[Call[TriggerPublication]]) -> None:
        # As publish: retries alone, first dispatches merged into one.
        merged: list[str] = []
        for call in calls:
            if call.args.only is None:
                merged.extend(call.args.ids)
            else:
                await c.events.dispatch_triggers(call.args, attempt=call.job.attempts)
        await c.events.dispatch_triggers(TriggerPublication(merged))

    async def publish_people(calls: Sequence[Call[PeoplePublication]]) -> None:
        for call in calls:
            await c.events.dispatch_people(call.args, attempt=call.job.attempts
                                           if call.args.only is not None else 1)

    async def publish_push_outcomes(calls: Sequence[Call[OutcomePublication]]) -> None:
        for call in calls:
            await c.events.dispatch_push_outcomes(call.args, attempt=call.job.attempts
                                                  if call.args.only is not None else 1)

    async def journey_entry(calls: Sequence[Call[EntryPage]]) -> None:
        for call in calls:
            await c.journey_runtime.entry_page(call.args)

    async def journey_enter(calls: Sequence[Call[LateEntry]]) -> None:
        for call in calls:
            await c.journey_runtime.enter_later(call.args)

    async def journey_timers(calls: Sequence[Call[list[InstanceKey]]]) -> None:
        keys = [key for call in calls for key in call.args]
        async with c.journey_facts.prefetched(keys):  # a few reads per batch, not per person
            await c.journey_runtime.timers(keys)

    async def journey_pushes(calls: Sequence[Call[list[PushOrder]]]) -> None:
        # One job at a time: a job's orders become the same sends with the same idempotency
        # keys however often it runs; merging jobs would make a retry's groups differ.
        for call in calls:
            await c.journey_runtime.pushes(call.args)

    async def purge(_calls: Sequence[Call[None]]) -> None:
        await c.registration.purge_finished()
        await c.queue.purge_done()

    return dict([
        on(REGISTRATION_PROCESS, process),
        on(REGISTRATION_CALLBACK, callback),
        on(RECORD, record),
        on(MAINTENANCE_PURGE, purge),
        on(SEND_FANOUT, fan_out),
        on(RELEASE_HELD, release),
        # At most DELIVERY_JOBS_PER_CALL jobs (of up to DELIVERY_BATCH_SIZE deliveries) per
        # call, claimed only for free slots: a worker holds at most WORKER_CONCURRENCY calls'
        # worth of deliveries, and the rest of a large send stays claimable by the others.
        on(DELIVER, deliver, max_jobs=c.settings.delivery_jobs_per_call),
        on(INTERACTION_EVENTS, publish),
        on(TRIGGER_EVENTS, publish_triggers),
        on(PERSON_EVENTS, publish_people),
        on(PUSH_EVENTS, publish_push_outcomes),
        on(JOURNEY_ENTRY, journey_entry),
        on(JOURNEY_ENTER, journey_enter),
        on(JOURNEY_TIMER, journey_timers),
        on(JOURNEY_PUSH, journey_pushes),
    ])
