"""Interactions: what devices report (CIJ interaction API) and tracked-link clicks.

Hot path (``Interactions.ingest``, in the request):

1. **Check** that the report's TrackingId (a send id) was sent to that very device token, in
   the organization of the URL. The endpoint has no credentials, so this check is what keeps
   it from being a hole: without a real (trackingId, token) pair, which only the device that
   received the notification knows, nothing is recorded. Lookups go through a small LRU cache
   of positive answers (apps report delivered, opened, then clicked for the same delivery) and
   otherwise through a *batched* read: the lookups of concurrent requests are collected for
   ``window`` seconds (~1 ms) and answered by ONE query, ``sends ⋈ devices (app_id,
   token_hash) ⋈ deliveries (send_id, device_id)``, which walks three indexes.
2. **Accept** through the group-commit writer: the report (kind, source, time and the
   delivery's ``Target``) rides in the commit's ``interactions.record`` job — one job row per
   commit, no other row — and the request is answered 202 only after that commit, so an
   accepted report is never lost. This is all the request pays for.
3. **Record** in the worker (``record_accepted``, the job's handler): in one transaction per
   group of jobs, the ``interactions`` rows, the first-occurrence markers, the roll-up
   counters (``clarion.store.counters``), one ``events.interaction`` job
   (``clarion.services.events``) and the completion of the record jobs themselves, so each
   report is recorded exactly once even when a job runs twice. Reports and the event bus see
   a report once it is recorded: within about a second when the service is not saturated.
   Under a burst the in-process worker yields to the API (``clarion.worker.pacing``) and
   catches up after it; ``clarion jobs list`` shows what is waiting.

Why accept and record apart: recording costs about as much CPU as the whole HTTP request
(random inserts into three indexes and the first-occurrence table, measured ~50 µs per report
in bench/events), so recording in the request halved the reports one core accepts per second.

Roll-ups per interaction (same vocabulary as the rest of ``report_counters``): ``<kind>``
always; ``unique_<kind>_devices`` on the first (delivery, kind); ``unique_<kind>_people`` on the
first (send, person, kind); ``unique_engaged_people`` on the first opened-or-clicked of
(send, person). Duplicates are stored (they count in totals) but never count twice in uniques.
Platform is the delivery's; the hour is the interaction's ``occurred_at``.

When one token is registered to several people of the app (CIJ allows it), one send may have
reached that token twice; a report cannot tell which notification was opened, so it is
recorded for the delivery with the smallest person id (deterministic).

Hand-written caches: an ``OrderedDict`` LRU costs well under a microsecond per hit, the only
thing that matters on this path (the same choice as ``ApiTokenCache``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.clock import Clock
from clarion.crypto import hash_token
from clarion.domain import links
from clarion.domain.interactions import (
    ENGAGING,
    ClientRateLimiter,
    InteractionKind,
    InteractionReport,
    Source,
    redirect_target,
    token_variants,
)
from clarion.errors import InvalidInput, NotFound
from clarion.services import events
from clarion.store import counters, interaction_rows
from clarion.store import tables as t
from clarion.store.db import Database
from clarion.store.group_commit import GroupCommitWriter
from clarion.store.jobs import Job, JobQueue

log = logging.getLogger(__name__)

_S = t.sends
_D = t.devices
_DL = t.deliveries
_I = t.interactions
MAX_KEYS_PER_LOOKUP = 250  # ≤ 250 sends and ≤ 500 hashes: far below any parameter limit
RECORD_JOB = "interactions.record"
MAX_RECORDS_PER_TRANSACTION = 2_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ENGAGING = frozenset(kind.value for kind in ENGAGING)


@dataclass(frozen=True, slots=True)
class Target:
    """The delivery a (send, device token) pair names, with what a record needs.

    Record jobs carry these fields in this order (``_item``): do not reorder them."""

    delivery_id: str
    send_id: str
    org_id: str
    app_id: str
    person_id: str
    device_id: str
    platform: str
    journey_id: str | None
    journey_step_id: str | None
    message_id: str | None


@dataclass(frozen=True, slots=True)
class _Record:
    target: Target
    kind: str  # an InteractionKind's value
    source: str  # a Source's value
    at: datetime


def unknown_pair(tracking_id: str) -> InvalidInput:
    """One answer for every refused pair, so the API tells nothing about other orgs' sends."""
    return InvalidInput(
        f"TrackingId {tracking_id} was not sent to this DeviceToken in this organization",
        fix="Report the trackingId the notification carried, with the token of the device that "
            "received it (as registered; for Web Push, the subscription endpoint), to the "
            "organization that sent it. Test sends have no trackingId and are not tracked.",
        field="TrackingId", code="UnknownTrackingId")


class _Lru:
    """A bounded mapping that forgets the least recently used entries; entries expire."""

    def __init__(self, size: int, ttl_seconds: float) -> None:
        self._size = size
        self._ttl = ttl_seconds
        self._data: OrderedDict[tuple[str, str], tuple[float, Target]] = OrderedDict()

    def get(self, key: tuple[str, str], now: float) -> Target | None:
        hit = self._data.get(key)
        if hit is None:
            return None
        if hit[0] < now:
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return hit[1]

    def put(self, key: tuple[str, str], value: Target, now: float) -> None:
        if self._size <= 0:
            return
        self._data[key] = (now + self._ttl, value)
        self._data.move_to_end(key)
        if len(self._data) > self._size:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class _BatchedLookup:
    """Resolves (send id, device token) pairs, many concurrent ones per query."""

    def __init__(self, db: Database, *, window_seconds: float, cache: _Lru) -> None:
        self._db = db
        self._window = window_seconds
        self._cache = cache
        self._waiting: dict[tuple[str, str], asyncio.Future[Target | None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self.queries = 0  # how many lookup queries ran (for tests and profiling)

    def cached(self, send_id: str, token: str) -> Target | None:
        """A known answer, without waiting (None: unknown, or not cached)."""
        return self._cache.get((send_id, token), time.monotonic())

    async def resolve(self, send_id: str, token: str) -> Target | None:
        key = (send_id, token)
        hit = self._cache.get(key, time.monotonic())
        if hit is not None:
            return hit
        fut = self._waiting.get(key)
        if fut is None:
            loop = asyncio.get_running_loop()
            fut = loop.create_future()
            self._waiting[key] = fut
            if len(self._waiting) >= MAX_KEYS_PER_LOOKUP:
                self._flush()
            elif self._timer is None:
                self._timer = loop.call_later(self._window, self._flush)
        # shield: one client going away must not cancel the lookup the others wait for.
        return await asyncio.shield(fut)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._waiting = self._waiting, {}
        if batch:
            task = asyncio.ensure_future(self._answer(batch))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _answer(self, batch: dict[tuple[str, str], asyncio.Future[Target | None]]) -> None:
        try:
            found = await self._query(list(batch))
        except Exception as exc:
            for fut in batch.values():
                if not fut.done():
                    fut.set_exception(exc)
                    fut.exception()  # retrieved: waiters that went away leave no log noise
            return
        now = time.monotonic()
        for key, fut in batch.items():
            target = found.get(key)
            if target is not None:
                self._cache.put(key, target, now)
            if not fut.done():
                fut.set_result(target)

    async def _query(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Target]:
        self.queries += 1
        wanted: dict[tuple[str, str], list[tuple[str, str]]] = {}  # (send, hash) -> keys
        for send_id, token in keys:
            for variant in token_variants(token):
                wanted.setdefault((send_id, hash_token(variant)), []).append((send_id, token))
        send_ids = sorted({s for s, _ in wanted})
        hashes = sorted({h for _, h in wanted})
        query = (
            select(_DL.c.id, _DL.c.send_id, _S.c.org_id, _DL.c.app_id, _DL.c.person_id,
                   _DL.c.device_id, _DL.c.platform, _D.c.token_hash, _S.c.journey_id,
                   _S.c.journey_step_id, _S.c.message_id)
            .select_from(
                _S.join(_D, _D.c.app_id == _S.c.app_id)
                .join(_DL, and_(_DL.c.send_id == _S.c.id, _DL.c.device_id == _D.c.id)))
            .where(_S.c.id.in_(send_ids), _D.c.token_hash.in_(hashes))
            .order_by(_DL.c.person_id, _DL.c.id)
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        out: dict[tuple[str, str], Target] = {}
        for r in rows:
            for key in wanted.get((r.send_id, r.token_hash), ()):
                out.setdefault(key, Target(
                    delivery_id=r.id, send_id=r.send_id, org_id=r.org_id, app_id=r.app_id,
                    person_id=r.person_id, device_id=r.device_id, platform=r.platform,
                    journey_id=r.journey_id, journey_step_id=r.journey_step_id,
                    message_id=r.message_id))
        return out

    async def close(self) -> None:
        self._flush()
        for task in list(self._flushes):
            await asyncio.gather(task, return_exceptions=True)


class Interactions:
    """The interaction use cases, with their long-lived state (lookup batcher and cache).

    Built once by the composition root; ``ingest`` and ``click`` are the entry points."""

    def __init__(
        self,
        *,
        db: Database,
        writer: GroupCommitWriter,
        queue: JobQueue,
        clock: Clock,
        link_key: bytes,
        lookup_window_seconds: float = 0.001,
        cache_size: int = 100_000,
        cache_ttl_seconds: float = 300.0,
        rate_per_client: float = 0.0,
        rate_burst: float = 0.0,
    ) -> None:
        self._db = db
        self._writer = writer
        self._queue = queue
        self._clock = clock
        self._link_key = link_key
        self._cache = _Lru(cache_size, cache_ttl_seconds)
        self.lookup = _BatchedLookup(db, window_seconds=lookup_window_seconds, cache=self._cache)
        # Per client IP, checked by the API before parsing (None: no limit).
        self.limiter = (ClientRateLimiter(rate_per_client, burst=rate_burst or None)
                        if rate_per_client > 0 else None)

    # ------------------------------------------------------------------- reports (CIJ API)

    async def ingest(self, *, org_id: str, report: InteractionReport, source: Source) -> None:
        """Accept one report, or raise InvalidInput when its pair is unknown to ``org_id``.

        Returns once the report is committed (in its record job: see ``record_accepted``)."""
        target = await self.lookup.resolve(report.tracking_id, report.device_token)
        if target is None or target.org_id != org_id:
            raise unknown_pair(report.tracking_id)
        await self._accept([_item(target, report.kind, source, report.occurred_at)])

    async def ingest_many(self, *, org_id: str, reports: Sequence[InteractionReport],
                          source: Source) -> None:
        """Accept a batch of reports, all or nothing (Clarion's batch form of the API)."""
        if len(reports) == 1:
            await self.ingest(org_id=org_id, report=reports[0], source=source)
            return
        targets = [self.lookup.cached(r.tracking_id, r.device_token) for r in reports]
        missing = [i for i, target in enumerate(targets) if target is None]
        if missing:  # one batched query for all of them (tasks only for the cache misses)
            found = await asyncio.gather(*(
                self.lookup.resolve(reports[i].tracking_id, reports[i].device_token)
                for i in missing))
            for i, target in zip(missing, found, strict=True):
                targets[i] = target
        items = []
        for i, (report, target) in enumerate(zip(reports, targets, strict=True)):
            if target is None or target.org_id != org_id:
                error = unknown_pair(report.tracking_id)
                error.message = f"item {i}: {error.message}"
                raise error
            items.append(_item(target, report.kind, source, report.occurred_at))
        await self._accept(items)  # one submission: one job, recorded in one transaction

    async def _accept(self, items: list[list[Any]]) -> None:
        """Commit ``items`` (group commit) into the commit's ``interactions.record`` job."""
        await self._writer.submit((), batch_job=(RECORD_JOB, items))

    # ------------------------------------------------------------------------ tracked links

    async def click(self, *, token: str, record: bool = True) -> str:
        """The original link a tracked link stands for; records a click unless ``record`` is
        False (HEAD requests: link scanners and previews are not people clicking).

        Raises NotFound for a forged, tampered or unknown link, or one whose send is gone."""
        delivery_id = links.verify(self._link_key, token)
        if delivery_id is None:
            raise _bad_link()
        async with self._db.read() as conn:
            row = (await conn.execute(
                select(_DL.c.id, _DL.c.send_id, _S.c.org_id, _DL.c.app_id, _DL.c.person_id,
                       _DL.c.device_id, _DL.c.platform, _S.c.journey_id,
                       _S.c.journey_step_id, _S.c.message_id, _S.c.message)
                .join(_S, _S.c.id == _DL.c.send_id)
                .where(_DL.c.id == delivery_id))).first()
        target_url = redirect_target((row.message or {}).get("link")) if row else None
        if row is None or target_url is None:
            raise _bad_link()
        if record:
            target = Target(
                delivery_id=row.id, send_id=row.send_id, org_id=row.org_id, app_id=row.app_id,
                person_id=row.person_id, device_id=row.device_id, platform=row.platform,
                journey_id=row.journey_id, journey_step_id=row.journey_step_id,
                message_id=row.message_id)
            try:
                await self._accept([_item(target, InteractionKind.CLICKED, Source.LINK,
                                          self._clock.now())])
            except Exception:
                # The person still gets where they wanted to go; the click is lost and logged.
                log.exception("could not record a tracked-link click (delivery %s)", row.id)
        return target_url

    # ---------------------------------------------------------------------------- recording

    async def record_accepted(self, jobs: Sequence[Job]) -> None:
        """Record the reports of ``interactions.record`` jobs, all in one transaction (the
        worker's handler calls it with the groups of ``record_groups``).

        The transaction also completes the jobs, so a job is recorded exactly once even if
        the worker dies after committing or two workers run it (a lease taken over): the one
        that finds its jobs already gone rolls back."""
        records = [_Record(Target(*item[3:]), item[0], item[1],
                           _EPOCH + timedelta(microseconds=item[2]))
                   for job in jobs for item in job.payload["ids"]]
        try:
            async with self._db.write() as conn:
                if await self._queue.complete_in(conn, [job.id for job in jobs]) < len(jobs):
                    raise _AlreadyRecorded
                await self._record(conn, records)
        except _AlreadyRecorded:
            log.info("interaction record jobs %s were recorded by another worker",
                     [job.id for job in jobs][:10])

    async def _record(self, conn: AsyncConnection, items: Sequence[_Record]) -> None:
        """Rows, first occurrences, roll-ups and the event job of one batch (one transaction)."""
        scopes: list[tuple[str, str]] = []
        for it in items:
            tg = it.target
            person = f"p:{tg.send_id}:{tg.person_id}"
            scopes.append((f"d:{tg.delivery_id}", it.kind))
            scopes.append((person, it.kind))
            if it.kind in _ENGAGING:
                scopes.append((person, "engaged"))
        # Key order for every multi-row write: two transactions touching the same rows (two
        # workers on PostgreSQL) then lock them in the same order and cannot deadlock.
        scopes.sort()
        new = await counters.first_times(conn, scopes)
        rows: list[tuple[Any, ...]] = []  # in interaction_rows.COLUMNS order
        # Summed here per (target, hour, metric): a batch of reports about one send adds to a
        # handful of counters, and building one Count per report and metric costs more.
        sums: dict[tuple[Target, int, str], list[Any]] = {}  # -> [value, at]

        def add(tg: Target, at: datetime, hour: int, metric: str) -> None:
            key = (tg, hour, metric)
            entry = sums.get(key)
            if entry is None:
                sums[key] = [1, at]
            else:
                entry[0] += 1

        for it in items:
            tg = it.target
            kind = it.kind
            at = it.at
            hour = counters.hour_of(at)
            add(tg, at, hour, kind)
            first = _take(new, (f"d:{tg.delivery_id}", kind))
            if first:
                add(tg, at, hour, f"unique_{kind}_devices")
            person = f"p:{tg.send_id}:{tg.person_id}"
            if _take(new, (person, kind)):
                add(tg, at, hour, f"unique_{kind}_people")
            if kind in _ENGAGING and _take(new, (person, "engaged")):
                add(tg, at, hour, "unique_engaged_people")
            rows.append((tg.org_id, tg.app_id, tg.send_id, tg.delivery_id, tg.person_id,
                         tg.device_id, tg.platform, kind, it.source, first,
                         tg.journey_id, tg.journey_step_id, tg.message_id, at))
        ids = await interaction_rows.insert(conn, rows)
        ordered = sorted(sums.items(), key=lambda kv: (
            kv[0][0].org_id, kv[0][0].app_id, kv[0][0].send_id, kv[0][0].platform, kv[0][1],
            kv[0][2]))
        await counters.increment(conn, [
            counters.Count(org_id=tg.org_id, app_id=tg.app_id, send_id=tg.send_id,
                           platform=tg.platform, at=at, metric=metric, value=value,
                           journey_id=tg.journey_id, journey_step_id=tg.journey_step_id,
                           message_id=tg.message_id)
            for (tg, _hour, metric), (value, at) in ordered])
        await events.publish_interactions(conn, self._queue, ids,
                                          now_ms=self._clock.epoch_ms())

    async def close(self) -> None:
        await self.lookup.close()

    def forget_cached(self) -> None:
        """Drop cached lookups (after deleting sends or devices, say)."""
        self._cache.clear()


def record_groups(jobs: Sequence[Job]) -> list[list[Job]]:
    """``jobs`` in groups of whole jobs with at most ``MAX_RECORDS_PER_TRANSACTION`` reports
    (a single larger job stays whole: its reports were accepted together)."""
    groups: list[list[Job]] = []
    size = 0
    for job in jobs:
        n = len(job.payload["ids"])
        if not groups or size + n > MAX_RECORDS_PER_TRANSACTION:
            groups.append([])
            size = 0
        groups[-1].append(job)
        size += n
    return groups


class _AlreadyRecorded(Exception):
    """Rolls back a record transaction whose jobs another worker completed first."""


def _item(target: Target, kind: InteractionKind, source: Source, at: datetime) -> list[Any]:
    """An accepted report as it travels in its record job (JSON): what it says, exact to the
    microsecond, and the delivery it is about with everything a record needs (``Target``'s
    fields, in order), so recording reads nothing back."""
    tg = target
    return [kind.value, source.value, (at - _EPOCH) // _MICROSECOND, tg.delivery_id,
            tg.send_id, tg.org_id, tg.app_id, tg.person_id, tg.device_id, tg.platform,
            tg.journey_id, tg.journey_step_id, tg.message_id]


def _take(new: set[tuple[str, str]], pair: tuple[str, str]) -> bool:
    """True once per new pair: the first report of a batch takes it, duplicates do not."""
    if pair in new:
        new.discard(pair)
        return True
    return False


def _bad_link() -> NotFound:
    return NotFound("this link is not valid",
                    fix="Open the notification again, or go to the app or site directly. A "
                        "link that was changed, or whose message was deleted, no longer works.")
