"""Job kinds and their handlers, wired from the container."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from clarion.bootstrap import Container
from clarion.services import delivery, events, interactions, registration, webhooks
from clarion.services.sending import FANOUT_JOB
from clarion.store.jobs import Job
from clarion.worker.loop import Bounded, Handler
from clarion.worker.pacing import Pacer, never_busy

PURGE_JOB = "maintenance.purge"


def build_handlers(c: Container, *, with_api: bool = False) -> dict[str, Handler]:
    # Only a worker sharing its process with the API yields to it (clarion.worker.pacing).
    pacer = Pacer(c.writer.busy if with_api else never_busy,
                  share=c.settings.worker_share_under_load)
    deps = registration.Deps(db=c.db, clock=c.clock, box=c.box, queue=c.queue,
                             senders=c.senders, settings=c.settings)

    async def process(jobs: Sequence[Job]) -> None:
        by_attempt: dict[int, list[str]] = {}
        for job in jobs:
            attempt = int(job.payload.get("attempt", 0))
            by_attempt.setdefault(attempt, []).extend(job.payload["ids"])
        for attempt, ids in by_attempt.items():
            for i in range(0, len(ids), 500):  # bounded statements, whatever the job sizes
                chunk = ids[i:i + 500]
                # Only work nobody waits on yields to the API: untracked requests without a
                # callback (they ride in the job). A tracked request's status is being polled.
                unwatched = all(not isinstance(item, str) for item in chunk)
                async with pacer.step() if unwatched else contextlib.nullcontext():
                    await registration.process(deps=deps, request_ids=chunk, attempt=attempt)

    send_deps = delivery.Deps(db=c.db, clock=c.clock, box=c.box, queue=c.queue,
                              senders=c.senders, policy=c.policy, limiter=c.limiter,
                              public_url=c.settings.public_url, link_key=c.link_key)

    async def fan_out(jobs: Sequence[Job]) -> None:
        for job in jobs:
            await delivery.fan_out(deps=send_deps, send_id=job.payload["send_id"],
                                   offset=int(job.payload["offset"]))

    async def deliver(jobs: Sequence[Job]) -> None:
        ids = [i for job in jobs for i in job.payload["ids"]]
        await delivery.deliver(deps=send_deps, delivery_ids=ids)

    # At most DELIVERY_JOBS_PER_CALL jobs (of up to DELIVERY_BATCH_SIZE deliveries) per call,
    # claimed only for free slots: a worker holds at most WORKER_CONCURRENCY calls' worth of
    # deliveries, and the rest of a large send stays claimable by the other workers.
    bounded_deliver = Bounded(deliver, max_jobs=c.settings.delivery_jobs_per_call)

    async def callback(jobs: Sequence[Job]) -> None:
        # Concurrently: one slow receiver must not hold up the others (each is tried once).
        # A callback fails alone: deliver_callback never raises, and nothing it could raise is
        # let out (a raise would dead-letter the batch, delivered callbacks included, and a
        # `clarion jobs retry` would send those twice).
        await asyncio.gather(*(webhooks.deliver_callback(client=c.callbacks,
                                                         payload=job.payload)
                               for job in jobs), return_exceptions=True)

    async def purge(_jobs: Sequence[Job]) -> None:
        await registration.purge_finished(
            db=c.db, clock=c.clock, retention_days=c.settings.registration_status_retention_days)
        await c.queue.purge_done()

    async def publish(jobs: Sequence[Job]) -> None:
        # Jobs naming one subscriber (retries) run alone; the others are merged into one
        # dispatch so subscribers get big batches.
        merged: list[int] = []
        for job in jobs:
            only = job.payload.get("only")
            if only is None:
                merged.extend(job.payload["ids"])
            else:
                await events.dispatch_interactions(
                    db=c.db, queue=c.queue, clock=c.clock, bus=c.events,
                    ids=job.payload["ids"], only=only, attempt=job.attempts)
        async with pacer.step():
            await events.dispatch_interactions(db=c.db, queue=c.queue, clock=c.clock,
                                               bus=c.events, ids=merged)

    async def record(jobs: Sequence[Job]) -> None:
        # Accepted interaction reports: nobody waits on them, so they yield to the API.
        for group in interactions.record_groups(jobs):
            async with pacer.step():
                await c.interactions.record_accepted(group)

    return {registration.PROCESS_JOB: process, registration.CALLBACK_JOB: callback,
            interactions.RECORD_JOB: record, PURGE_JOB: purge, FANOUT_JOB: fan_out,
            delivery.DELIVERY_JOB: bounded_deliver, events.INTERACTION_JOB: publish}
