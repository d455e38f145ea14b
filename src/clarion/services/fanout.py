"""Fan-out: a send's people expanded, page by page, into one delivery per valid device.

Each page of people (at most ``PEOPLE_PER_PAGE`` people and, unless one person alone has more,
``DELIVERIES_PER_PAGE`` devices) is one transaction that writes one delivery row per (send,
device) — unique, so a re-run writes nothing twice — the ``delivery.send`` jobs for those rows,
the report counts (inflow, not sent for want of a device) and the job for the next page. Small
pages keep fan-out's memory flat and let delivery start early.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clarion.clock import Clock
from clarion.ids import time_ordered_ids
from clarion.services.delivery import DELIVER, DeliveryPolicy
from clarion.store import counters
from clarion.store import sends as store
from clarion.store.db import Database
from clarion.store.jobs import JobQueue, NewJob
from clarion.store.tasks import Task

PEOPLE_PER_PAGE = 500
DELIVERIES_PER_PAGE = 5_000


@dataclass(frozen=True, slots=True)
class FanOutPage:
    send_id: str
    offset: int  # the index, in the send's audience, of the page's first person

    def encode(self) -> dict[str, Any]:
        return {"send_id": self.send_id, "offset": self.offset}

    @staticmethod
    def decode(payload: Mapping[str, Any]) -> FanOutPage:
        return FanOutPage(str(payload["send_id"]), int(payload["offset"]))


SEND_FANOUT: Task[FanOutPage] = Task("send.fanout", FanOutPage.encode, FanOutPage.decode)


def page_job(send_id: str, offset: int) -> NewJob:
    """The job of one page; its unique key makes queueing a page twice harmless."""
    return SEND_FANOUT.job(FanOutPage(send_id, offset),
                           unique_key=f"{SEND_FANOUT.name}:{send_id}:{offset}")


def _page(window: list[str], per_person: Mapping[str, int], limit: int) -> list[str]:
    """The longest prefix of ``window`` with at most ``limit`` devices (at least one person)."""
    total = 0
    for i, person in enumerate(window):
        total += per_person.get(person, 0)
        if total > limit and i > 0:
            return window[:i]
    return window


class FanOut:
    def __init__(self, db: Database, clock: Clock, queue: JobQueue,
                 policy: DeliveryPolicy) -> None:
        self._db = db
        self._clock = clock
        self._queue = queue
        self._batch_size = policy.batch_size

    async def page(self, page: FanOutPage) -> None:
        """Expand one page of the send's people into deliveries (idempotent per page)."""
        async with self._db.read() as conn:
            send = await store.get(conn, page.send_id)
            if (send is None or send.fanned_out_people > page.offset
                    or send.state == "fanned_out"):
                return  # deleted, or this page was already committed by an earlier run
            window = await store.audience_page(conn, send.id, page.offset, PEOPLE_PER_PAGE)
            per_person = await store.active_device_counts(conn, send.app_id, window)
            people = _page(window, per_person, DELIVERIES_PER_PAGE)
            devices = (await store.active_devices(conn, send.app_id, people)
                       if per_person else [])
        now = self._clock.now()
        ids = time_ordered_ids(len(devices), self._clock.epoch_ms())
        rows = [(i, send.id, send.org_id, send.app_id, d.person_id, d.id, d.platform,
                 "pending", 0, now, now) for i, d in zip(ids, devices, strict=True)]
        next_offset = page.offset + len(people)
        last = next_offset >= send.people_count
        with_devices = {d.person_id for d in devices}
        keys = send.keys()
        counts = [counters.Count(**keys, platform="", at=now, metric="inflow",
                                 value=len(people))]
        if len(people) > len(with_devices):
            counts.append(counters.Count(**keys, platform="", at=now,
                                         metric="not_sent:no_valid_device",
                                         value=len(people) - len(with_devices)))
        per_platform: dict[str, int] = defaultdict(int)
        for d in devices:
            per_platform[d.platform] += 1
        counts += [counters.Count(**keys, platform=p, at=now, metric="deliveries", value=n)
                   for p, n in per_platform.items()]
        jobs = [DELIVER.job(ids[i:i + self._batch_size])
                for i in range(0, len(ids), self._batch_size)]
        if not last:
            jobs.append(page_job(send.id, next_offset))
        async with self._db.write() as conn:
            await counters.increment(conn, counts)
            await store.insert_deliveries(conn, rows)
            if jobs:
                await self._queue.enqueue(conn, jobs)
            await store.advance_fanout(conn, send.id, people_done=next_offset,
                                       devices=len(rows), last=last, now=now)
