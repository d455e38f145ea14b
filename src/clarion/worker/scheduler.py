"""Periodic work, put on the job queue so that exactly one worker runs each occurrence.

Each occurrence is a job with a unique key derived from its time bucket: any number of
processes may run the scheduler; the unique key makes the enqueue idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from clarion.clock import Clock
from clarion.store.jobs import JobQueue, NewJob

log = logging.getLogger(__name__)


async def run_scheduler(
    queue: JobQueue, clock: Clock, stop: asyncio.Event, *, every: dict[str, float]
) -> None:
    """Enqueue each job kind in ``every`` once per its period (seconds) until ``stop``."""
    tick = min(every.values())
    while not stop.is_set():
        now_ms = clock.epoch_ms()
        jobs = [NewJob(kind=kind, payload={}, unique_key=f"{kind}:{now_ms // int(period * 1000)}")
                for kind, period in every.items()]
        try:
            await queue.enqueue_now(jobs)
        except Exception:  # the database may be restarting: try again next tick
            log.exception("scheduler could not enqueue periodic jobs")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=tick)
