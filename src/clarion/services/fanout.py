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
``send_messages`` in the page's transaction (a person held by quiet time keeps theirs for the
release). Inline sends skip this entirely.

A send to a segment has no audience rows at first: the page that starts a chunk reads the next
5,000 members after the last one recorded (a keyset over the segment's query, one bounded
statement) and records them as that chunk in its transaction, so every later page of the chunk
(and a re-run) reads the same people; fan-out ends at the first chunk with fewer than 5,000."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clarion.clock import Clock
from clarion.domain.push_messages import PersonFacts
from clarion.errors import NotFound, RetryLater
from clarion.ids import time_ordered_ids
from clarion.services import screening
from clarion.services.delivery import DELIVER, OutcomePublisher, no_outcomes
from clarion.services.delivery_policy import DeliveryPolicy
from clarion.services.personalised import Renderer, is_personalised
from clarion.store import compliance, counters
from clarion.store import messages as message_store
from clarion.store import sends as store
from clarion.store.db import Conn, Database
from clarion.store.jobs import JobQueue, NewJob
from clarion.store.tables import AUDIENCE_CHUNK
from clarion.store.tasks import Task

PEOPLE_PER_PAGE = AUDIENCE_CHUNK  # a page never straddles two chunks of the audience
DELIVERIES_PER_PAGE = 5_000
# The first page is small: the first notifications leave as soon as it commits, instead of
# after a full page is written (the time from the POST to the first notification).
FIRST_PAGE_DELIVERIES = 500


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


@dataclass(frozen=True, slots=True)
class ReleaseHeld:
    """Send the pushes of a send held by quiet time until ``at_ms`` (part ``part``: a release
    of more people than a page holds continues in the next part)."""

    send_id: str
    at_ms: int
    part: int = 0

    def encode(self) -> dict[str, Any]:
        return {"send_id": self.send_id, "at_ms": self.at_ms, "part": self.part}

    @staticmethod
    def decode(payload: Mapping[str, Any]) -> ReleaseHeld:
        return ReleaseHeld(str(payload["send_id"]), int(payload["at_ms"]),
                           int(payload.get("part", 0)))


RELEASE_HELD: Task[ReleaseHeld] = Task("compliance.release", ReleaseHeld.encode,
                                       ReleaseHeld.decode)


def release_job(release: ReleaseHeld) -> NewJob:
    return RELEASE_HELD.job(release, run_at_ms=release.at_ms, unique_key=(
        f"{RELEASE_HELD.name}:{release.send_id}:{release.at_ms}:{release.part}"))


def release_jobs(send_id: str, held: Mapping[str, datetime]) -> list[NewJob]:
    """One job per distinct release instant (people of one zone share theirs)."""
    instants = {int(at.timestamp() * 1000) for at in held.values()}
    return [release_job(ReleaseHeld(send_id, ms)) for ms in sorted(instants)]


# (org id, segment id, after this person id, at most) → member ids in id order.
SegmentMembers = Callable[[str, str, str | None, int], Awaitable[list[str]]]


async def _no_segments(_o: str, segment_id: str, _a: str | None, _n: int) -> list[str]:
    raise NotFound(f"segment {segment_id} cannot be read here", fix="Give FanOut the segments.")


@dataclass(slots=True)
class _Screening:
    rules: screening.OrgRules
    result: screening.Screened


class FanOut:
    def __init__(self, db: Database, clock: Clock, queue: JobQueue,
                 policy: DeliveryPolicy,
                 unsubscribe_url: Callable[[str, str], str] = lambda _a, _p: "",
                 members: SegmentMembers = _no_segments,
                 outcomes: OutcomePublisher = no_outcomes) -> None:
        self._unsubscribe_url = unsubscribe_url  # (app id, person id) → the person's link
        self._members = members
        self._outcomes = outcomes
        self._db = db
        self._clock = clock
        self._queue = queue
        self._batch_size = policy.batch_size

    async def page(self, page: FanOutPage) -> None:
        """Expand one page of the send's people into deliveries (idempotent per page)."""
        now = self._clock.now()
        async with self._db.read() as conn:
            send = await store.get(conn, page.send_id)
            if (send is None or send.fanned_out_people > page.offset
                    or send.state == "fanned_out"):
                return  # deleted, or this page was already committed by an earlier run
            chunk, start = divmod(page.offset, AUDIENCE_CHUNK)
            ids = await store.audience_chunk(conn, send.id, chunk)
            previous = (await store.audience_chunk(conn, send.id, chunk - 1)
                        if not ids and send.segment_id is not None and start == 0 and chunk
                        else [])
        fresh: list[str] = []  # a segment's next members, recorded by this page
        if not ids and send.segment_id is not None and start == 0:
            ids = fresh = await self._next_members(send, max(previous, default=None))
        async with self._db.read() as conn:
            people = sorted(ids)[start:]
            limit = (min(FIRST_PAGE_DELIVERIES, DELIVERIES_PER_PAGE) if page.offset == 0
                     else DELIVERIES_PER_PAGE)
            devices = await store.active_devices(conn, send.app_id, people,
                                                 limit + 1) if people else []
            covered, devices = _page(people, devices, limit)
            if covered == 0 and people:
                # One person with more devices than a page holds: their page is theirs alone.
                devices = await store.active_devices(conn, send.app_id, people[:1])
                covered = 1
            rendered: list[tuple[str, str, dict[str, Any]]] = []
            unrendered = 0
            reached = {d.person_id for d in devices}
            facts: dict[str, PersonFacts] | None = None  # read once, for rendering and screen
            if is_personalised(send.message) and devices:
                facts = await message_store.people_facts(
                    conn, send.org_id, list(dict.fromkeys(d.person_id for d in devices)))
                rendered, devices, unrendered = self._render(send, devices, facts)
            checks = await self._screen(conn, send, devices, now, facts)
        no_device = [p for p in people[:covered] if p not in reached]
        not_rendered = sorted(reached - {d.person_id for d in devices}) if unrendered else []
        next_offset = page.offset + covered
        # (no chunk: none left; a segment's last chunk is the first with fewer than 5,000)
        last = not people or (next_offset >= send.people_count + len(fresh) and (
            send.segment_id is None or len(ids) < AUDIENCE_CHUNK))
        with_devices = len({d.person_id for d in devices})
        counts = [counters.Count(**send.keys(), platform="", at=now, metric="inflow",
                                 value=covered)]
        if covered > with_devices + unrendered:
            counts.append(counters.Count(**send.keys(), platform="", at=now,
                                         metric="not_sent:no_valid_device",
                                         value=covered - with_devices - unrendered))
        if unrendered:
            counts.append(counters.Count(**send.keys(), platform="", at=now,
                                         metric="not_sent:personalisation_failed",
                                         value=unrendered))
        jobs = [] if last else [page_job(send.id, next_offset)]
        async with self._db.write() as conn:
            if fresh:
                await store.append_audience(conn, send.id, chunk, fresh)
            await message_store.insert_send_messages(conn, rendered)
            rows = await self._deliveries(conn, send, devices, checks, counts, jobs, now)
            await store.advance_fanout(conn, send.id, people_done=next_offset,
                                       devices=rows, last=last, now=now)
            await self._outcomes(conn, send.org_id, send.id, "not_sent", no_device,
                                 "no_valid_device")
            await self._outcomes(conn, send.org_id, send.id, "not_sent", not_rendered,
                                 "personalisation_failed")

    async def _next_members(self, send: store.SendRow, after: str | None) -> list[str]:
        """The next chunk of the send's segment: its members after ``after`` (none when the
        segment was deleted meanwhile: the send ends with the people it reached)."""
        assert send.segment_id is not None
        try:
            return await self._members(send.org_id, send.segment_id, after, AUDIENCE_CHUNK)
        except NotFound:
            return []

    async def release(self, release: ReleaseHeld) -> None:
        """Send the held pushes whose quiet time ended, screened again (the cap, expiry, and
        consent are checked at release)."""
        now = self._clock.now()
        until = datetime.fromtimestamp(release.at_ms / 1000, UTC)
        async with self._db.read() as conn:
            send = await store.get(conn, release.send_id)
            if send is None:
                return
            people = await compliance.held_due(conn, send.id, until, PEOPLE_PER_PAGE)
            if not people:
                return
            devices = await store.active_devices(conn, send.app_id, people)
            checks = await self._screen(conn, send, devices, now)
        with_devices = len({d.person_id for d in devices})
        counts = []
        if len(people) > with_devices:  # their devices went away while they waited
            counts.append(counters.Count(**send.keys(), platform="", at=now,
                                         metric="not_sent:no_valid_device",
                                         value=len(people) - with_devices))
        jobs = []
        if len(people) == PEOPLE_PER_PAGE:
            jobs.append(release_job(ReleaseHeld(send.id, release.at_ms, release.part + 1)))
        async with self._db.write() as conn:
            if await compliance.unhold(conn, send.id, people) != len(people):
                raise RetryLater("another worker is releasing these people", delay_seconds=1)
            rows = await self._deliveries(conn, send, devices, checks, counts, jobs, now,
                                          released=people)
            await store.add_devices(conn, send.id, rows)

    async def _screen(self, conn: Conn, send: store.SendRow,
                      devices: Sequence[store.ActiveDevice], now: datetime,
                      facts: Mapping[str, PersonFacts] | None = None) -> _Screening | None:
        """The compliance screen of the people with devices, when the org has rules that
        apply to the send's category (else ``None``, and one primary-key read was the cost).
        ``facts``: the people as already read for rendering (else the screen reads them)."""
        rules = screening.for_send(await screening.rules_of(conn, send.org_id), send)
        if rules is None or not rules.applies(screening.category_of(send)):
            return None
        people = sorted({d.person_id for d in devices})
        known = None if facts is None else {
            p: compliance.PersonFacts(f.time_zone, f.phone, dict(f.attributes))
            for p, f in facts.items()}
        return _Screening(rules, await screening.screen(conn, rules, send, people, now,
                                                        facts=known))

    async def _deliveries(self, conn: Conn, send: store.SendRow,
                          devices: Sequence[store.ActiveDevice], checks: _Screening | None,
                          counts: list[counters.Count], jobs: list[NewJob],
                          now: datetime, released: Sequence[str] = ()) -> int:
        """In the write transaction: the screen's holds and blocks, the frequency cap, then one
        delivery row per remaining device, their jobs and counts; how many rows."""
        keys = send.keys()
        await compliance.log(conn, send.org_id, [
            compliance.ComplianceEvent(send.id, send.app_id, p, "released", "quiet_time", now)
            for p in released])
        if checks is not None:
            allowed, capped = await screening.cap(conn, checks.rules, send,
                                                  checks.result.now, now)
            keep = set(allowed)
            devices = [d for d in devices if d.person_id in keep]
            held = checks.result.held
            blocked = {**checks.result.blocked, **dict.fromkeys(capped, "frequency_cap")}
            await compliance.hold(conn, send.id, held, now)
            jobs += release_jobs(send.id, held)
            await compliance.log(conn, send.org_id, [
                *(compliance.ComplianceEvent(send.id, send.app_id, p, "held", "quiet_time",
                                             now, until) for p, until in held.items()),
                *(compliance.ComplianceEvent(send.id, send.app_id, p, "blocked", reason, now)
                  for p, reason in blocked.items())])
            if held:
                counts.append(counters.Count(**keys, platform="", at=now,
                                             metric="held:quiet_time", value=len(held)))
            for reason, n in Counter(blocked.values()).items():
                counts.append(counters.Count(**keys, platform="", at=now,
                                             metric=f"blocked:{reason}", value=n))
        ids = time_ordered_ids(len(devices), self._clock.epoch_ms())
        per_person = Counter(d.person_id for d in devices)
        rows = [(i, send.id, send.org_id, send.app_id, d.person_id, d.id, d.platform,
                 "pending", 0, per_person[d.person_id] == 1, now, now)
                for i, d in zip(ids, devices, strict=True)]
        per_platform: dict[str, int] = defaultdict(int)
        for d in devices:
            per_platform[d.platform] += 1
        counts += [counters.Count(**keys, platform=p, at=now, metric="deliveries", value=n)
                   for p, n in per_platform.items()]
        jobs = [DELIVER.job(ids[i:i + self._batch_size])
                for i in range(0, len(ids), self._batch_size)] + jobs
        await counters.increment(conn, counts)
        await store.insert_deliveries(conn, rows)
        if jobs:
            await self._queue.enqueue(conn, jobs)
        return len(rows)

    def _render(self, send: store.SendRow, devices: list[store.ActiveDevice],
                facts: Mapping[str, PersonFacts]
                ) -> tuple[list[tuple[str, str, dict[str, Any]]], list[store.ActiveDevice], int]:
        """A personalised send's page: each person with a device gets their message, from
        one read of the page's people (``facts``). Returns (rows for send_messages, the
        devices of the people rendered, how many people could not be rendered)."""
        renderer = Renderer.of(send.message)
        people = list(dict.fromkeys(d.person_id for d in devices))
        rows: list[tuple[str, str, dict[str, Any]]] = []
        failed: set[str] = set()
        unsubscribe = renderer.compiled.needs_compliance
        for person_id in people:
            extra = ({"unsubscribe_url": self._unsubscribe_url(send.app_id, person_id)}
                     if unsubscribe else None)
            message = renderer.render(facts.get(person_id) or PersonFacts(id=person_id), extra)
            if message is None:
                failed.add(person_id)
            else:
                rows.append((send.id, person_id, message.as_dict()))
        if failed:
            devices = [d for d in devices if d.person_id not in failed]
        return rows, devices, len(failed)
