"""Fan-out: a send's people expanded, page by page, into one delivery per valid device.

A page reads one chunk of the send's audience by its key (5,000 ids: a page costs the same in
a send of 10,000 people or of 1,000,000), then those people's active devices in person-id order,
at most ``DELIVERIES_PER_PAGE`` of them: a person's devices never straddle two pages, and a
person with more devices than a page holds gets a page alone. A page's ``offset`` is
5,000·chunk + the index, in the chunk's ids sorted, of its first person. Each page is one
transaction that writes one delivery row per (send, device) — unique, so a re-run writes
nothing twice — the ``delivery.send`` jobs for those rows, the report counts (inflow, not sent
for want of a device) and the job for the next page. Small pages keep fan-out's memory flat
and let delivery start early.

A personalised send (``message_id``, ``clarion.services.personalised``) also renders, in the
page, one message per person with a device, from one read of those people; the rows go to
``send_messages`` in the page's transaction. Inline sends skip this entirely."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clarion.clock import Clock
from clarion.domain.push_messages import PersonFacts
from clarion.ids import time_ordered_ids
from clarion.services.delivery import DELIVER, DeliveryPolicy
from clarion.services.personalised import Renderer, is_personalised
from clarion.store import counters
from clarion.store import messages as message_store
from clarion.store import sends as store
from clarion.store.db import Conn, Database
from clarion.store.jobs import JobQueue, NewJob
from clarion.store.tables import AUDIENCE_CHUNK
from clarion.store.tasks import Task

PEOPLE_PER_PAGE = AUDIENCE_CHUNK  # a page never straddles two chunks of the audience
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


def _page(people: list[str], devices: list[store.ActiveDevice], limit: int
          ) -> tuple[int, list[store.ActiveDevice]]:
    """(how many of ``people`` (sorted) the page covers, their devices) from ``devices`` read
    in person order with ``limit + 1``: when the read was cut, the last person's devices may
    be incomplete, so that person starts the next page."""
    if len(devices) <= limit:
        return len(people), devices
    last = devices[-1].person_id
    return bisect_left(people, last), [d for d in devices if d.person_id != last]


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
            chunk, start = divmod(page.offset, AUDIENCE_CHUNK)
            people = sorted(await store.audience_chunk(conn, send.id, chunk))[start:]
            devices = await store.active_devices(conn, send.app_id, people,
                                                 DELIVERIES_PER_PAGE + 1) if people else []
            covered, devices = _page(people, devices, DELIVERIES_PER_PAGE)
            if covered == 0 and people:
                # One person with more devices than a page holds: their page is theirs alone.
                devices = await store.active_devices(conn, send.app_id, people[:1])
                covered = 1
            rendered: list[tuple[str, str, dict[str, Any]]] = []
            unrendered = 0
            if is_personalised(send.message) and devices:
                rendered, devices, unrendered = await self._render(conn, send, devices)
        now = self._clock.now()
        ids = time_ordered_ids(len(devices), self._clock.epoch_ms())
        per_person = Counter(d.person_id for d in devices)
        rows = [(i, send.id, send.org_id, send.app_id, d.person_id, d.id, d.platform,
                 "pending", 0, per_person[d.person_id] == 1, now, now)
                for i, d in zip(ids, devices, strict=True)]
        next_offset = page.offset + covered
        last = next_offset >= send.people_count or not people  # (no chunk: none left)
        with_devices = len(per_person)
        keys = send.keys()
        counts = [counters.Count(**keys, platform="", at=now, metric="inflow",
                                 value=covered)]
        if covered > with_devices + unrendered:
            counts.append(counters.Count(**keys, platform="", at=now,
                                         metric="not_sent:no_valid_device",
                                         value=covered - with_devices - unrendered))
        if unrendered:
            counts.append(counters.Count(**keys, platform="", at=now,
                                         metric="not_sent:personalisation_failed",
                                         value=unrendered))
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
            await message_store.insert_send_messages(conn, rendered)
            if jobs:
                await self._queue.enqueue(conn, jobs)
            await store.advance_fanout(conn, send.id, people_done=next_offset,
                                       devices=len(rows), last=last, now=now)

    @staticmethod
    async def _render(conn: Conn, send: store.SendRow, devices: list[store.ActiveDevice]
                      ) -> tuple[list[tuple[str, str, dict[str, Any]]],
                                 list[store.ActiveDevice], int]:
        """A personalised send's page: each person with a device gets their message, from
        one read of the page's people. Returns (rows for send_messages, the devices of the
        people rendered, how many people could not be rendered)."""
        renderer = Renderer.of(send.message)
        people = list(dict.fromkeys(d.person_id for d in devices))
        facts = await message_store.people_facts(conn, send.org_id, people)
        rows: list[tuple[str, str, dict[str, Any]]] = []
        failed: set[str] = set()
        for person_id in people:
            message = renderer.render(facts.get(person_id) or PersonFacts(id=person_id))
            if message is None:
                failed.add(person_id)
            else:
                rows.append((send.id, person_id, message.as_dict()))
        if failed:
            devices = [d for d in devices if d.person_id not in failed]
        return rows, devices, len(failed)
