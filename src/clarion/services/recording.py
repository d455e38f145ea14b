"""Recording accepted interaction reports (the worker's ``interactions.record`` handler).

In one transaction per group of record jobs: the ``interactions`` rows, the first-occurrence
markers, the roll-up counters (``clarion.store.counters``), one ``events.interaction`` job
(``clarion.services.events``) and the completion of the record jobs themselves, so each report
is recorded exactly once even when a job runs twice (a lease taken over, a crash after the
commit): the late run finds its jobs gone and rolls back. Reports and the event bus see a
report once it is recorded: within about a second when the service is not saturated. Under a
burst the in-process worker yields to the API (``clarion.worker.pacing``) and catches up after
it; ``clarion jobs list`` shows what is waiting.

Roll-ups per interaction (same vocabulary as the rest of ``report_counters``): ``<kind>``
always; ``unique_<kind>_devices`` on the first (delivery, kind); ``unique_<kind>_people`` on the
first (send, person, kind); ``unique_engaged_people`` on the first opened-or-clicked of
(send, person). Duplicates are stored (they count in totals) but never count twice in uniques.
Platform is the delivery's; the hour is the interaction's ``occurred_at``.

Consent reports (``OptedIn``/``OptedOut``, a ``ConsentChoice``) are no interactions: in the
same transaction they set the person's consent for the app (source ``interaction api``, at the
report's time), one upsert per organization; a report older than the stored choice changes
nothing. An opt-out also marks the org's ``opt_outs`` setting, as every other way of opting
out does, so fan-out reads its consent from then on (``clarion.services.screening``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clarion.clock import Clock
from clarion.domain.interactions import CONSENT_CHOICES, ENGAGING, ConsentChoice, Target
from clarion.services.events import publish_interactions
from clarion.services.interactions import Accepted
from clarion.store import compliance as consent_store
from clarion.store import counters
from clarion.store import interactions as store
from clarion.store.db import Conn, Database
from clarion.store.jobs import JobQueue

log = logging.getLogger(__name__)

MAX_RECORDS_PER_TRANSACTION = 2_000
CONSENT_SOURCE = "interaction api"  # the source of consent set through the interaction API
_ENGAGING = frozenset(kind.value for kind in ENGAGING)


@dataclass(frozen=True, slots=True)
class RecordJob:
    id: int
    reports: list[Accepted]


def record_groups(jobs: Sequence[RecordJob]) -> list[list[RecordJob]]:
    """``jobs`` in groups of whole jobs with at most ``MAX_RECORDS_PER_TRANSACTION`` reports
    (a single larger job stays whole: its reports were accepted together)."""
    groups: list[list[RecordJob]] = []
    size = 0
    for job in jobs:
        n = len(job.reports)
        if not groups or size + n > MAX_RECORDS_PER_TRANSACTION:
            groups.append([])
            size = 0
        groups[-1].append(job)
        size += n
    return groups


class _AlreadyRecorded(Exception):
    """Rolls back a record transaction whose jobs another worker completed first."""


def _take(new: set[tuple[str, str]], pair: tuple[str, str]) -> bool:
    """True once per new pair: the first report of a batch takes it, duplicates do not."""
    if pair in new:
        new.discard(pair)
        return True
    return False


class Recorder:
    def __init__(self, db: Database, clock: Clock, queue: JobQueue) -> None:
        self._db = db
        self._clock = clock
        self._queue = queue

    async def record(self, jobs: Sequence[RecordJob]) -> None:
        """Record the reports of ``jobs`` (one group of ``record_groups``) in one
        transaction that also completes the jobs."""
        try:
            async with self._db.write() as conn:
                if await self._queue.complete_in(conn, [job.id for job in jobs]) < len(jobs):
                    raise _AlreadyRecorded
                await self._record(conn, [r for job in jobs for r in job.reports])
        except _AlreadyRecorded:
            log.info("interaction record jobs %s were recorded by another worker",
                     [job.id for job in jobs][:10])

    async def _record(self, conn: Conn, items: Sequence[Accepted]) -> None:
        """Rows, first occurrences, roll-ups and the event job of one batch (its consent
        reports: the people's consent)."""
        choices = [it for it in items if it.kind in CONSENT_CHOICES]
        if choices:
            await self._record_consents(conn, choices)
            items = [it for it in items if it.kind not in CONSENT_CHOICES]
            if not items:
                return
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
        rows: list[tuple[Any, ...]] = []  # in store.COLUMNS order
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
        ids = await store.insert(conn, rows)
        ordered = sorted(sums.items(), key=lambda kv: (
            kv[0][0].org_id, kv[0][0].app_id, kv[0][0].send_id, kv[0][0].platform, kv[0][1],
            kv[0][2]))
        await counters.increment(conn, [
            counters.Count(org_id=tg.org_id, app_id=tg.app_id, send_id=tg.send_id,
                           platform=tg.platform, at=at, metric=metric, value=value,
                           journey_id=tg.journey_id, journey_step_id=tg.journey_step_id,
                           message_id=tg.message_id)
            for (tg, _hour, metric), (value, at) in ordered])
        await publish_interactions(conn, self._queue, ids, now_ms=self._clock.epoch_ms())

    async def _record_consents(self, conn: Conn, choices: Sequence[Accepted]) -> None:
        """The consent reports of a batch: one upsert per org that keeps a newer choice, and
        the org's ``opt_outs`` mark when one of them opts out."""
        by_org: dict[str, list[consent_store.ConsentRow]] = {}
        for it in choices:
            tg = it.target
            by_org.setdefault(tg.org_id, []).append(consent_store.ConsentRow(
                tg.app_id, tg.person_id, it.kind == ConsentChoice.OPTED_IN, CONSENT_SOURCE,
                it.at))
        now = self._clock.now()
        for org_id in sorted(by_org):  # key order: see _record
            rows = by_org[org_id]
            await consent_store.upsert_consents(conn, org_id, rows, newer_only=True)
            if any(not r.opted_in for r in rows):
                await consent_store.save_settings(conn, org_id, {"opt_outs": True}, now)
