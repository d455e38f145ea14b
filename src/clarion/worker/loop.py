"""The worker loop: claim batches, run their handlers, record each outcome.

One ``Worker`` claims up to ``batch_size`` due jobs of the kinds it has handlers for, groups
them by kind and runs one handler call per group, with at most ``concurrency`` groups in flight.
A handler wrapped in ``Bounded(handler, max_jobs)`` (delivery: each job is hundreds of
notifications) gets at most ``max_jobs`` jobs per call, and the worker claims its jobs only for
the calls it can start now (free slots × ``max_jobs``): what one worker holds in memory is
bounded, and the jobs it cannot run yet stay claimable by the other workers.
Outcomes (the zulip rule: only a dedicated "retry later" error is retried):

==========================================  =========================================
the handler ...                             the batch's jobs ...
==========================================  =========================================
returns                                     are completed
raises ``clarion.errors.RetryLater``        are retried after ``delay_seconds`` (or a
                                            jittered backoff when it is None)
loses the database (``DatabaseUnavailable``: are retried after a jittered backoff
locked, read-only, unreachable; SQLAlchemy
``OperationalError``, an invalidated
connection, ``OSError``)
raises anything else                        are dead-lettered with the traceback summary;
                                            ``clarion jobs retry`` brings them back
==========================================  =========================================

Leases of claimed jobs are extended every ``lease_seconds / 3`` while they run, so a long batch
is not taken over; a worker that dies stops extending and its jobs become claimable again.
When nothing is due the worker sleeps in ``queue.wait(poll_seconds)``, which returns at once
when jobs are enqueued (same process, or PostgreSQL NOTIFY). Once a minute it purges finished
keyed jobs past their retention. Setting ``stop`` ends the loop after in-flight work finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, OperationalError

from clarion.domain.backoff import backoff_seconds
from clarion.errors import DatabaseUnavailable, RetryLater
from clarion.store.jobs import Job, JobQueue

log = logging.getLogger(__name__)

Handler = Callable[[Sequence[Job]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Bounded:
    """A handler called with at most ``max_jobs`` jobs, claimed only when a slot is free."""

    handler: Handler
    max_jobs: int

    async def __call__(self, jobs: Sequence[Job]) -> None:
        await self.handler(jobs)


PURGE_EVERY_SECONDS = 60.0
_MAX_TRACEBACK_FRAMES = 8


def default_worker_id() -> str:
    """``host:pid:random``: unique per process, readable in ``clarion jobs list``."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


def is_connection_lost(exc: BaseException) -> bool:
    """A passing infrastructure failure (worth a retry), not a fault of the job itself."""
    if isinstance(exc, DatabaseUnavailable | OperationalError | OSError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def error_summary(exc: BaseException) -> str:
    """``Type: message`` followed by the innermost frames, for ``last_error``."""
    frames = traceback.format_exception(exc, limit=-_MAX_TRACEBACK_FRAMES)
    return "".join(traceback.format_exception_only(exc)).strip() + "\n" + "".join(frames)


class Worker:
    def __init__(
        self,
        queue: JobQueue,
        handlers: Mapping[str, Handler],
        *,
        concurrency: int,
        batch_size: int,
        poll_seconds: float,
        worker_id: str | None = None,
    ) -> None:
        if concurrency < 1 or batch_size < 1 or poll_seconds <= 0:
            raise ValueError("concurrency >= 1, batch_size >= 1 and poll_seconds > 0 required")
        self._queue = queue
        self._handlers = dict(handlers)
        self._bounded = {kind: h.max_jobs for kind, h in handlers.items()
                         if isinstance(h, Bounded)}
        if any(n < 1 for n in self._bounded.values()):
            raise ValueError("Bounded handlers need max_jobs >= 1")
        self._unbounded = sorted(set(self._handlers) - set(self._bounded))
        self._concurrency = concurrency
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self.worker_id = (worker_id or default_worker_id())[:64]
        self._pending: list[tuple[str, list[Job]]] = []  # claimed, waiting for a slot
        self._running: set[asyncio.Task[None]] = set()
        self._held: dict[int, Job] = {}  # every claimed, unfinished job (its lease is kept)
        self._last_purge = 0.0
        self._claim_failures = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then finish what was claimed and return."""
        log.info("worker %s started (kinds: %s)", self.worker_id,
                 ", ".join(sorted(self._handlers)) or "none")
        stopped = asyncio.create_task(stop.wait(), name="clarion-worker-stop")
        keeper = asyncio.create_task(self._keep_leases(), name="clarion-worker-leases")
        try:
            while not stop.is_set():
                await self._maybe_purge()
                self._start_pending()
                if self._pending or len(self._running) >= self._concurrency:
                    await asyncio.wait({*self._running, stopped},
                                       return_when=asyncio.FIRST_COMPLETED)
                    continue
                claimed = await self._claim()
                if claimed is None:  # the database is unreachable: back off
                    delay = backoff_seconds(self._claim_failures, base=0.5, cap=30.0)
                    await asyncio.wait({stopped}, timeout=max(delay, 0.1))
                elif claimed:
                    self._add(claimed)
                else:
                    waiting = asyncio.create_task(self._queue.wait(self._poll_seconds))
                    await asyncio.wait({waiting, stopped}, return_when=asyncio.FIRST_COMPLETED)
                    waiting.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await waiting
            await self._drain()
        except asyncio.CancelledError:
            # Cancelled (not stopped): abandon the batches; their leases expire and another
            # claim runs them again.
            for running in self._running:
                running.cancel()
            raise
        finally:
            for helper in (keeper, stopped):
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
            log.info("worker %s stopped", self.worker_id)

    async def _claim(self) -> list[Job] | None:
        """Due jobs (possibly none), or None when the database could not be asked."""
        claims: list[tuple[list[str], int]] = []
        if self._unbounded:
            claims.append((self._unbounded, self._batch_size))
        free = self._concurrency - len(self._running)
        claimed: list[Job] = []
        for kinds, limit in claims + [([k], n) for k, n in sorted(self._bounded.items())]:
            bounded = kinds[0] in self._bounded
            if bounded and free < 1:
                break
            try:
                got = await self._queue.claim(worker_id=self.worker_id,
                                              limit=free * limit if bounded else limit,
                                              kinds=kinds)
            except Exception as exc:
                self._claim_failures += 1
                if is_connection_lost(exc):
                    log.warning("worker %s cannot claim jobs (%s); retrying", self.worker_id, exc)
                else:
                    log.exception("worker %s: claiming jobs failed; retrying", self.worker_id)
                return claimed or None  # what was claimed already runs; the rest waits
            # the slots these jobs will take: one per kind, one per max_jobs of a bounded kind
            free -= -(-len(got) // limit) if bounded else len({job.kind for job in got})
            claimed += got
        self._claim_failures = 0
        return claimed

    def _add(self, claimed: list[Job]) -> None:
        groups: dict[str, list[Job]] = {}
        for job in claimed:
            self._held[job.id] = job
            groups.setdefault(job.kind, []).append(job)
        for kind, batch in groups.items():
            step = self._bounded.get(kind, len(batch))
            self._pending.extend((kind, batch[i:i + step]) for i in range(0, len(batch), step))
        self._start_pending()

    def _start_pending(self) -> None:
        while self._pending and len(self._running) < self._concurrency:
            kind, batch = self._pending.pop(0)
            task = asyncio.create_task(self._process(kind, batch), name=f"clarion-job-{kind}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _drain(self) -> None:
        """Run everything already claimed (``stop`` means: take nothing new)."""
        while self._pending or self._running:
            self._start_pending()
            if self._running:
                await asyncio.wait(self._running, return_when=asyncio.FIRST_COMPLETED)

    async def _process(self, kind: str, batch: list[Job]) -> None:
        ids = [job.id for job in batch]
        try:
            try:
                await self._handlers[kind](batch)
            except asyncio.CancelledError:
                raise
            except RetryLater as exc:
                log.info("%d %s job(s) retry later: %s", len(batch), kind, exc.message)
                await self._queue.fail_many(batch, f"retry later: {exc.message}",
                                            retry_in_seconds=exc.delay_seconds)
            except Exception as exc:
                summary = error_summary(exc)
                if is_connection_lost(exc):
                    log.warning("%d %s job(s) lost the connection; retrying: %s",
                                len(batch), kind, exc)
                    await self._queue.fail_many(batch, summary)
                else:
                    log.exception("%d %s job(s) failed; dead-lettered (ids %s)",
                                  len(batch), kind, ids[:10])
                    await self._queue.fail_many(batch, summary, permanent=True)
            else:
                await self._queue.complete(ids)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Recording the outcome failed (the database went away): the lease expires and
            # another claim runs the batch again.
            log.exception("could not record the outcome of %d %s job(s)", len(batch), kind)
        finally:
            for job_id in ids:
                self._held.pop(job_id, None)

    async def _keep_leases(self) -> None:
        interval = self._queue.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            if not self._held:
                continue
            try:
                await self._queue.extend_lease(list(self._held))
            except Exception as exc:
                log.warning("worker %s could not extend its leases: %s", self.worker_id, exc)

    async def _maybe_purge(self) -> None:
        now = time.monotonic()
        if now - self._last_purge < PURGE_EVERY_SECONDS:
            return
        self._last_purge = now
        try:
            purged = await self._queue.purge_done()
        except Exception as exc:
            log.warning("purging finished jobs failed: %s", exc)
            return
        if purged:
            log.info("purged %d finished jobs", purged)

