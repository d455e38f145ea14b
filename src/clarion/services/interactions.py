"""Interactions: what devices report (CIJ interaction API) and tracked-link clicks.

Hot path (``Interactions.ingest``, in the request):

1. **Check** that the report's TrackingId (a send id) was sent to that very device token, in
   the organization of the URL (``clarion.services.interaction_lookup``). The endpoint has no
   credentials, so this check is what keeps it from being a hole: without a real (trackingId,
   token) pair, which only the device that received the notification knows, nothing is
   recorded.
2. **Accept** through the group-commit writer: the report (kind, source, time and the
   delivery's ``Target``) rides in the commit's ``interactions.record`` job — one job row per
   commit, no other row — and the request is answered 202 only after that commit, so an
   accepted report is never lost. This is all the request pays for.
3. **Record** in the worker (``clarion.services.recording``).

Why accept and record apart: recording costs about as much CPU as the whole HTTP request
(random inserts into three indexes and the first-occurrence table, measured ~50 µs per report
in bench/events), so recording in the request halved the reports one core accepts per second.

When one token is registered to several people of the app (CIJ allows it), one send may have
reached that token twice; a report cannot tell which notification was opened, so it is
recorded for the delivery with the smallest person id (deterministic).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from clarion.clock import Clock
from clarion.domain import links
from clarion.domain.interactions import (
    ClientRateLimiter,
    InteractionKind,
    InteractionReport,
    Source,
    Target,
    redirect_target,
)
from clarion.errors import InvalidInput, NotFound
from clarion.services.interaction_lookup import BatchedLookup, Lru
from clarion.store import interactions as store
from clarion.store.db import Database
from clarion.store.group_commit import GroupCommitWriter
from clarion.store.tasks import Task

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Accepted:
    """An accepted report as it travels in its record job."""

    target: Target
    kind: str  # an InteractionKind's value, or a ConsentChoice's (recorded as consent)
    source: str  # a Source's value
    at: datetime

    def encode(self) -> list[Any]:
        """What it says, exact to the microsecond, then the delivery it is about (every field
        of ``Target``), so that recording reads nothing back. A JSON list: a burst carries
        thousands per job."""
        return _encoded(self.target, self.kind, self.source, self.at)

    @staticmethod
    def decode(item: Sequence[Any]) -> Accepted:
        return Accepted(Target(*item[3:]), item[0], item[1],
                        _EPOCH + timedelta(microseconds=item[2]))


def _encoded(target: Target, kind: str, source: str, at: datetime) -> list[Any]:
    """``Accepted(target, kind, source, at).encode()`` without building the ``Accepted``: the
    request path encodes every report it accepts, and a frozen dataclass costs one
    ``object.__setattr__`` per field."""
    return [kind, source, (at - _EPOCH) // _MICROSECOND, *target.values()]


def _decode_reports(payload: Mapping[str, Any]) -> list[Accepted]:
    return [Accepted.decode(item) for item in payload["ids"]]


# The group commit's job of accepted reports: {"ids": [Accepted.encode(), …]}.
RECORD: Task[list[Accepted]] = Task(
    "interactions.record", lambda items: {"ids": [a.encode() for a in items]},
    _decode_reports)


def unknown_pair(tracking_id: str) -> InvalidInput:
    """One answer for every refused pair, so the API tells nothing about other orgs' sends."""
    return InvalidInput(
        f"TrackingId {tracking_id} was not sent to this DeviceToken in this organization",
        fix="Report the trackingId the notification carried, with the token of the device that "
            "received it (as registered; for Web Push, the subscription endpoint), to the "
            "organization that sent it. Test sends have no trackingId and are not tracked.",
        field="TrackingId", code="UnknownTrackingId")


def _bad_link() -> NotFound:
    return NotFound("this link is not valid",
                    fix="Open the notification again, or go to the app or site directly. A "
                        "link that was changed, or whose message was deleted, no longer works.")


class Interactions:
    """The interaction use cases, with their long-lived state (lookup batcher and cache)."""

    def __init__(
        self,
        *,
        db: Database,
        writer: GroupCommitWriter,
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
        self._clock = clock
        self._link_key = link_key
        self.lookup = BatchedLookup(db, window_seconds=lookup_window_seconds,
                                    cache=Lru(cache_size, cache_ttl_seconds))
        # Per client IP, checked by the API before parsing (None: no limit).
        self.limiter = (ClientRateLimiter(rate_per_client, burst=rate_burst or None)
                        if rate_per_client > 0 else None)

    def now(self) -> datetime:
        """The service's time (reports without a Timestamp happened now)."""
        return self._clock.now()

    async def ingest(self, *, org_id: str, report: InteractionReport, source: Source) -> None:
        """Accept one report, or raise InvalidInput when its pair is unknown to ``org_id``.

        Returns once the report is committed (in its record job)."""
        target = await self.lookup.resolve(report.tracking_id, report.device_token)
        if target is None or target.org_id != org_id:
            raise unknown_pair(report.tracking_id)
        await self._accept([_encoded(target, report.kind.value, source.value,
                                     report.occurred_at)])

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
            items.append(_encoded(target, report.kind.value, source.value,
                                  report.occurred_at))
        await self._accept(items)  # one submission: one job, recorded in one transaction

    async def _accept(self, items: list[list[Any]]) -> None:
        """Commit ``items`` (encoded ``Accepted``) into the commit's ``interactions.record``
        job (group commit)."""
        await self._writer.submit((), batch=RECORD.batch(items))

    async def click(self, *, token: str, record: bool = True) -> str:
        """The original link a tracked link stands for; records a click unless ``record`` is
        False (HEAD requests: link scanners and previews are not people clicking).

        Raises NotFound for a forged, tampered or unknown link, or one whose send is gone."""
        delivery_id = links.verify(self._link_key, token)
        if delivery_id is None:
            raise _bad_link()
        async with self._db.read() as conn:
            found = await store.linked_delivery(conn, delivery_id)
        target_url = redirect_target(found.link) if found is not None else None
        if found is None or target_url is None:
            raise _bad_link()
        if record:
            try:
                await self._accept([_encoded(found.target, InteractionKind.CLICKED.value,
                                             Source.LINK.value, self._clock.now())])
            except Exception:
                # The person still gets where they wanted to go; the click is lost and logged.
                log.exception("could not record a tracked-link click (delivery %s)",
                              found.target.delivery_id)
        return target_url

    async def close(self) -> None:
        await self.lookup.close()
