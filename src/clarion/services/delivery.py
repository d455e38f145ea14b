"""Fan-out and delivery: the policy side of sending (the adapters only speak protocols).

Fan-out (``send.fanout`` jobs) expands a send page by page: each page of people (at most
``PEOPLE_PER_PAGE`` people and, unless one person alone has more, ``DELIVERIES_PER_PAGE``
devices) is one transaction that writes one delivery row per (send, device) — unique, so a
re-run writes nothing twice — the ``delivery.send`` jobs for those rows, and the job for the
next page. Small pages keep fan-out's memory flat and let delivery start early.

Delivery (``delivery.send`` jobs) loads its deliveries by primary key, keeps the still-pending
ones, reads each send's message once, groups the deliveries by (app, platform), waits for the
app's rate limit, calls the platform's sender outside any transaction and applies every
outcome in one transaction (deliveries another worker finished meanwhile are left alone and
not counted again):

=================  ==================================================================
outcome            effect
=================  ==================================================================
accepted           delivery ``accepted`` with the provider's id
invalid_token      delivery ``invalid_token``; device ``invalid`` (never sent to again)
mismatch           delivery ``mismatch``; device ``mismatch`` with the reason (kept, shown)
retry_later        delivery stays ``pending``; a new job at now + backoff (Retry-After
                   honoured) unless attempts or the message TTL are used up (``expired``)
rejected           delivery ``rejected`` with the provider's reason
credential_error   app's credentials flagged invalid; the delivery stays ``pending`` and the
                   app's sends pause (re-checked every ``PAUSE_SECONDS``) until the
                   configuration is fixed or the message expires
=================  ==================================================================

Duplicates: a worker killed after the provider accepted a batch but before the outcome was
committed sends that batch again after its lease expires. At most one batch per in-flight
handler can be repeated: ``worker_concurrency × delivery_jobs_per_call × delivery_batch_size``
notifications per crash (``clarion.worker.handlers``: a worker runs at most that many).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from clarion.clock import Clock
from clarion.crypto import SecretBox
from clarion.domain import links
from clarion.domain.backoff import backoff_seconds, honour_retry_after
from clarion.domain.messages import Message
from clarion.domain.outcomes import (
    DeviceAddress,
    DeviceSend,
    Notification,
    Outcome,
    OutcomeKind,
    Platform,
    Sender,
)
from clarion.domain.ratelimit import TokenBucket
from clarion.ids import time_ordered_ids
from clarion.services import apps as apps_service
from clarion.services.sending import FANOUT_JOB
from clarion.store import counters
from clarion.store import tables as t
from clarion.store.bulk import DriverMany
from clarion.store.db import Database
from clarion.store.jobs import JobQueue, NewJob

log = logging.getLogger(__name__)

DELIVERY_JOB = "delivery.send"
PEOPLE_PER_PAGE = 500
DELIVERIES_PER_PAGE = 5_000
PAUSE_SECONDS = 60.0
_S = t.sends
_DL = t.deliveries
_D = t.devices


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    batch_size: int = 500  # deliveries per delivery job
    max_attempts: int = 8
    rates: Mapping[Platform, float] = field(default_factory=lambda: {
        Platform.IOS: 10_000.0, Platform.ANDROID: 10_000.0, Platform.WEB: 2_000.0})
    concurrency_per_app: int = 8  # batches in flight per (app, platform) in one process


class Limiter:
    """Per (app, platform) token buckets and concurrency caps, in this process."""

    def __init__(self, policy: DeliveryPolicy) -> None:
        self._policy = policy
        self._buckets: dict[tuple[str, Platform], TokenBucket] = {}
        self._slots: dict[tuple[str, Platform], asyncio.Semaphore] = {}

    def slot(self, app_id: str, platform: Platform) -> asyncio.Semaphore:
        key = (app_id, platform)
        if key not in self._slots:
            self._slots[key] = asyncio.Semaphore(self._policy.concurrency_per_app)
        return self._slots[key]

    async def wait(self, app_id: str, platform: Platform, n: int) -> None:
        key = (app_id, platform)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self._policy.rates[platform],
                                                      now=time.monotonic())
        delay = bucket.take(n, time.monotonic())
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass(frozen=True, slots=True)
class Deps:
    db: Database
    clock: Clock
    box: SecretBox
    queue: JobQueue
    senders: Mapping[Platform, Sender]
    policy: DeliveryPolicy
    limiter: Limiter
    public_url: str
    link_key: bytes


_DELIVERY_COLUMNS = ("id", "send_id", "org_id", "app_id", "person_id", "device_id", "platform",
                     "state", "attempts", "created_at", "updated_at")
# A re-run page finds its rows there already: (send, device) is unique.
_INSERT_DELIVERIES = DriverMany(
    lambda d: (postgresql if d.name == "postgresql" else sqlite).insert(_DL)
    .on_conflict_do_nothing(index_elements=["send_id", "device_id"]),
    _DELIVERY_COLUMNS, column_keys=_DELIVERY_COLUMNS)
# An outcome, for a delivery still pending (another worker may have finished it meanwhile).
_FINISH = DriverMany(
    lambda _d: update(_DL).where(_DL.c.id == bindparam("b_id"), _DL.c.state == "pending")
    .values(state=bindparam("b_state"), reason=bindparam("b_reason"),
            detail=bindparam("b_detail"), provider_id=bindparam("b_provider_id"),
            attempts=bindparam("b_attempts"), updated_at=bindparam("b_now")),
    ("b_id", "b_state", "b_reason", "b_detail", "b_provider_id", "b_attempts", "b_now"))


# ------------------------------------------------------------------------------- fan-out


async def fan_out(*, deps: Deps, send_id: str, offset: int) -> None:
    """Expand one page of the send's people into deliveries (idempotent per page)."""
    async with deps.db.read() as conn:
        send = (await conn.execute(select(_S).where(_S.c.id == send_id))).first()
    if send is None or send.fanned_out_people > offset or send.state == "fanned_out":
        return  # deleted, or this page was already committed by an earlier run
    window = list(send.user_ids)[offset:offset + PEOPLE_PER_PAGE]
    active = (_D.c.app_id == send.app_id, _D.c.state == "active")
    async with deps.db.read() as conn:
        per_person: dict[str, int] = dict((await conn.execute(
            select(_D.c.person_id, func.count()).where(*active, _D.c.person_id.in_(window))
            .group_by(_D.c.person_id))).all())
        people = _page(window, per_person, DELIVERIES_PER_PAGE)
        devices = (await conn.execute(select(_D.c.id, _D.c.person_id, _D.c.platform).where(
            *active, _D.c.person_id.in_(people),
        ).order_by(_D.c.person_id, _D.c.id))).all() if per_person else []
    now = deps.clock.now()
    ids = time_ordered_ids(len(devices), deps.clock.epoch_ms())
    rows = [(i, send_id, send.org_id, send.app_id, d.person_id, d.id, d.platform, "pending", 0,
             now, now) for i, d in zip(ids, devices, strict=True)]  # _DELIVERY_COLUMNS
    next_offset = offset + len(people)
    last = next_offset >= len(send.user_ids)
    with_devices = {d.person_id for d in devices}
    keys = _send_keys(send)
    counts = [counters.Count(**keys, platform="", at=now, metric="inflow", value=len(people))]
    if len(people) > len(with_devices):
        counts.append(counters.Count(**keys, platform="", at=now,
                                     metric="not_sent:no_valid_device",
                                     value=len(people) - len(with_devices)))
    per_platform: dict[str, int] = defaultdict(int)
    for d in devices:
        per_platform[d.platform] += 1
    counts += [counters.Count(**keys, platform=p, at=now, metric="deliveries", value=n)
               for p, n in per_platform.items()]
    async with deps.db.write() as conn:
        await counters.increment(conn, counts)
        if rows:
            await _INSERT_DELIVERIES.run(conn, rows)
        size = deps.policy.batch_size
        jobs = [NewJob(kind=DELIVERY_JOB, payload={"ids": ids[i:i + size]})
                for i in range(0, len(ids), size)]
        if not last:
            jobs.append(NewJob(kind=FANOUT_JOB, payload={"send_id": send_id,
                                                          "offset": next_offset},
                               unique_key=f"{FANOUT_JOB}:{send_id}:{next_offset}"))
        if jobs:
            await deps.queue.enqueue(conn, jobs)
        await conn.execute(update(_S).where(_S.c.id == send_id).values(
            state="fanned_out" if last else "fanning_out", fanned_out_people=next_offset,
            device_count=_S.c.device_count + len(rows),
            fanned_out_at=now if last else None))


def _page(window: list[str], per_person: Mapping[str, int], limit: int) -> list[str]:
    """The longest prefix of ``window`` with at most ``limit`` devices (at least one person)."""
    total = 0
    for i, person in enumerate(window):
        total += per_person.get(person, 0)
        if total > limit and i > 0:
            return window[:i]
    return window


def _send_keys(send: Any) -> dict[str, Any]:
    """The report keys of a send (journey keys are null for API sends)."""
    return {"org_id": send.org_id, "app_id": send.app_id, "send_id": send.id,
            "journey_id": send.journey_id, "journey_step_id": send.journey_step_id,
            "message_id": send.message_id}


# ------------------------------------------------------------------------------ delivery


@dataclass(frozen=True, slots=True)
class _Send:
    """What the deliveries of one send share: parsed once per send per batch."""

    id: str
    org_id: str
    journey_id: str | None
    journey_step_id: str | None
    message_id: str | None
    expires_at: datetime
    message: Message
    notification: Notification | None  # the same for every device (no link to track)

    def keys(self, app_id: str, platform: str, at: datetime) -> dict[str, Any]:
        return {"org_id": self.org_id, "app_id": app_id, "send_id": self.id,
                "platform": platform, "at": at, "journey_id": self.journey_id,
                "journey_step_id": self.journey_step_id, "message_id": self.message_id}


async def deliver(*, deps: Deps, delivery_ids: Sequence[str]) -> None:
    """Send every still-pending delivery among ``delivery_ids`` and apply the outcomes."""
    rows, sends = await _load(deps.db, delivery_ids)
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in rows:
        groups[(row.app_id, row.platform)].append(row)
    await asyncio.gather(*(_deliver_group(deps, app_id, Platform(platform), items, sends)
                           for (app_id, platform), items in groups.items()))


def _id_in(db: Database, column: Any, ids: Sequence[str]) -> ColumnElement[bool]:
    """``column`` among ``ids``: one array parameter on PostgreSQL (one plan, a primary key
    lookup, whatever the number of ids), an ``IN`` list on SQLite."""
    if db.is_sqlite:
        return column.in_(ids)  # type: ignore[no-any-return]
    return column == any_(bindparam(None, list(ids), type_=postgresql.ARRAY(t.GUID)))  # type: ignore[no-any-return]


# Web Push keys only for web devices: the other platforms' JSON ``null`` is not decoded per row.
_WEB_KEYS = case((_DL.c.platform == Platform.WEB.value, _D.c.web_keys)).label("web_keys")


async def _load(db: Database, ids: Sequence[str]) -> tuple[list[Any], dict[str, _Send]]:
    """The still-pending deliveries among ``ids`` (with their device) and their sends.

    Selected by primary key only, the state checked here: with a predicate on ``state``,
    PostgreSQL once planned a scan of every pending row instead of the key lookups."""
    rows: list[Any] = []
    async with db.read() as conn:
        for i in range(0, len(ids), 500):
            rows.extend(r for r in (await conn.execute(
                select(_DL.c.id, _DL.c.send_id, _DL.c.app_id, _DL.c.platform, _DL.c.state,
                       _DL.c.attempts, _DL.c.device_id, _DL.c.person_id, _D.c.token,
                       _WEB_KEYS, _D.c.state.label("device_state"))
                .join(_D, _D.c.id == _DL.c.device_id, isouter=True)
                .where(_id_in(db, _DL.c.id, ids[i:i + 500]))
            )).all() if r.state == "pending")
        send_ids = sorted({r.send_id for r in rows})
        sends: dict[str, _Send] = {}
        for i in range(0, len(send_ids), 500):
            for s in (await conn.execute(
                select(_S.c.id, _S.c.org_id, _S.c.journey_id, _S.c.journey_step_id,
                       _S.c.message_id, _S.c.expires_at, _S.c.message)
                .where(_S.c.id.in_(send_ids[i:i + 500])))).all():
                message = Message.from_dict(s.message)
                sends[s.id] = _Send(
                    id=s.id, org_id=s.org_id, journey_id=s.journey_id,
                    journey_step_id=s.journey_step_id, message_id=s.message_id,
                    expires_at=s.expires_at, message=message,
                    notification=None if message.link else message.notification(
                        tracking_id=s.id))
    return [r for r in rows if r.send_id in sends], sends  # a deleted send: nothing to do


async def _deliver_group(deps: Deps, app_id: str, platform: Platform, rows: list[Any],
                         sends: Mapping[str, _Send]) -> None:
    now = deps.clock.now()
    expired = {sid: _expired(s.expires_at, now) for sid, s in sends.items()}
    outcomes: dict[str, Outcome] = {}
    live: list[Any] = []
    for r in rows:
        if expired[r.send_id]:
            outcomes[r.id] = Outcome(r.id, OutcomeKind.REJECTED, reason="Expired",
                                     detail="the message's time to live ran out before "
                                     "delivery")
        elif r.token is None or r.device_state != "active":
            outcomes[r.id] = Outcome(r.id, OutcomeKind.REJECTED, reason="DeviceGone",
                                     detail="the device was removed or invalidated after the "
                                     "send was queued")
        else:
            live.append(r)
    if live:
        await _send_live(deps, app_id, platform, live, sends, outcomes)
    await _apply(deps, app_id, platform, rows, sends, outcomes)


def _expired(expires_at: datetime, now: datetime) -> bool:
    if expires_at.tzinfo is None:  # SQLite returns naive UTC
        return expires_at.timestamp() < now.replace(tzinfo=None).timestamp()
    return expires_at < now


async def _send_live(deps: Deps, app_id: str, platform: Platform, live: list[Any],
                     sends: Mapping[str, _Send], outcomes: dict[str, Outcome]) -> None:
    sender = deps.senders.get(platform)
    creds = await apps_service.load_platform_credentials(
        db=deps.db, box=deps.box, app_id=app_id, platform=platform)
    paused = await apps_service.credentials_invalid(db=deps.db, app_id=app_id, platform=platform)
    if sender is None or creds is None or paused:
        why = ("no sender for this platform" if sender is None else
               "the app no longer has this platform" if creds is None else
               f"the app's {platform.value} credentials were refused: {paused}")
        for r in live:
            outcomes[r.id] = Outcome(r.id, OutcomeKind.CREDENTIAL_ERROR, reason="Paused",
                                     detail=f"sending paused: {why}. Fix the app configuration "
                                     "(`clarion apps update`); pending deliveries then resume.")
        return
    batch = [DeviceSend(
        delivery_id=r.id,
        device=DeviceAddress(platform, r.token, r.web_keys),
        notification=_notification(deps, sends[r.send_id], r.id),
    ) for r in live]
    async with deps.limiter.slot(app_id, platform):
        await deps.limiter.wait(app_id, platform, len(batch))
        try:
            got = await sender.send(creds, batch)
        except Exception as exc:  # an adapter bug must not lose the deliveries
            log.exception("the %s sender raised", platform.value)
            # The class only: an exception's text may quote what a remote server sent.
            got = [Outcome(s.delivery_id, OutcomeKind.RETRY_LATER, reason="InternalError",
                           detail=f"Clarion failed while sending ({type(exc).__name__}); the "
                                  "send is retried later") for s in batch]
    del batch
    for o in got:
        outcomes[o.delivery_id] = o
    for r in live:
        if r.id not in outcomes:
            outcomes[r.id] = Outcome(
                r.id, OutcomeKind.RETRY_LATER, reason="NoOutcome",
                detail="the provider adapter returned no outcome for this device")


def _notification(deps: Deps, send: _Send, delivery_id: str) -> Notification:
    """The device gets a tracked link (records the click, then redirects to the original) and
    the original link for apps without tracking consent; trackingId is the send id."""
    if send.notification is not None:
        return send.notification
    link = links.tracked_url(deps.public_url, deps.link_key, delivery_id)
    return send.message.notification(tracking_id=send.id, link=link)


_FINAL = {
    OutcomeKind.ACCEPTED: "accepted",
    OutcomeKind.INVALID_TOKEN: "invalid_token",
    OutcomeKind.MISMATCH: "mismatch",
    OutcomeKind.REJECTED: "rejected",
}


async def _apply(deps: Deps, app_id: str, platform: Platform, rows: list[Any],
                 sends: Mapping[str, _Send], outcomes: Mapping[str, Outcome]) -> None:
    now = deps.clock.now()
    finals: list[tuple[Any, ...]] = []  # _FINISH's parameters: the delivery id first
    device_updates: dict[str, dict[str, Any]] = {}  # delivery id -> device update
    retry: dict[str, int] = {}  # delivery id -> delay ms
    decided: list[tuple[Any, str]] = []  # (row, final state)
    credential_reason: str | None = None
    for r in rows:
        o = outcomes[r.id]
        attempts = r.attempts + 1
        state = _FINAL.get(o.kind)
        if o.kind in (OutcomeKind.RETRY_LATER, OutcomeKind.CREDENTIAL_ERROR):
            if o.kind is OutcomeKind.CREDENTIAL_ERROR and o.reason != "Paused":
                credential_reason = o.detail or o.reason or "credential error"
            delay = (PAUSE_SECONDS if o.kind is OutcomeKind.CREDENTIAL_ERROR else
                     honour_retry_after(backoff_seconds(attempts), o.retry_after_seconds))
            gives_up = (o.kind is OutcomeKind.RETRY_LATER and attempts >= deps.policy.max_attempts)
            if gives_up or _expired(sends[r.send_id].expires_at, _plus(now, delay)):
                state = "expired"
                o = Outcome(o.delivery_id, o.kind, reason=o.reason,
                            detail=f"gave up after {attempts} attempt(s): {o.detail or o.reason}")
            else:
                retry[r.id] = int(delay * 1000)
                finals.append((r.id, "pending", o.reason, o.detail, None, attempts, now))
                continue
        assert state is not None
        decided.append((r, state))
        finals.append((r.id, state, o.reason, o.detail, o.provider_id, attempts, now))
        if o.kind in (OutcomeKind.INVALID_TOKEN, OutcomeKind.MISMATCH):
            device_updates[r.id] = {
                "b_device": r.device_id,
                "b_dstate": "invalid" if o.kind is OutcomeKind.INVALID_TOKEN else "mismatch",
                "b_dreason": f"{o.reason}: {o.detail}" if o.detail else o.reason,
                "b_now": now}
    if credential_reason is not None:
        await apps_service.mark_credentials_invalid(
            db=deps.db, clock=deps.clock, app_id=app_id, platform=platform,
            reason=credential_reason)
    writes = _Writes(finals, decided, retry, device_updates)
    if deps.db.is_sqlite:
        # The write transaction holds SQLite's only writer lock, and the outcome UPDATE only
        # touches pending rows: when it changed every row, no other worker finished any of
        # them and the rest follows; otherwise it rolls back and the general path sorts them.
        try:
            async with deps.db.write() as conn:
                if await _FINISH.run(conn, finals) != len(finals):
                    raise _FinishedElsewhere
                await _write_rest(deps, conn, app_id, platform, writes, sends, now)
            return
        except _FinishedElsewhere:
            pass
    async with deps.db.write() as conn:
        # Deliveries another worker finished meanwhile (it re-ran the job after this one's
        # lease expired) are left as they are and not counted twice. PostgreSQL: the rows
        # stay locked until the commit.
        pending = await _still_pending(deps.db, conn, [f[0] for f in finals])
        if len(pending) < len(finals):
            writes = _Writes([f for f in finals if f[0] in pending],
                             [(r, state) for r, state in decided if r.id in pending],
                             {i: d for i, d in retry.items() if i in pending},
                             {i: u for i, u in device_updates.items() if i in pending})
        await _FINISH.run(conn, writes.finals)
        await _write_rest(deps, conn, app_id, platform, writes, sends, now)


class _FinishedElsewhere(Exception):
    """Rolls back an outcome transaction that found a delivery no longer pending."""


@dataclass(slots=True)
class _Writes:
    finals: list[tuple[Any, ...]]  # _FINISH's parameters, the delivery id first
    decided: list[tuple[Any, str]]  # (row, final state)
    retry: dict[str, int]  # delivery id -> delay ms
    device_updates: dict[str, dict[str, Any]]  # delivery id -> device update


async def _write_rest(deps: Deps, conn: Any, app_id: str, platform: Platform, writes: _Writes,
                      sends: Mapping[str, _Send], now: datetime) -> None:
    """What follows the outcome UPDATE: roll-ups, device states and retry jobs."""
    await _count(conn, app_id, platform, writes.decided, sends, now)
    if writes.device_updates:
        await conn.execute(
            update(_D).where(_D.c.id == bindparam("b_device"))
            .values(state=bindparam("b_dstate"), state_reason=bindparam("b_dreason"),
                    state_changed_at=bindparam("b_now"), updated_at=bindparam("b_now")),
            list(writes.device_updates.values()))
    if writes.retry:
        now_ms = deps.clock.epoch_ms()
        by_delay: dict[int, list[str]] = defaultdict(list)
        for delivery_id, delay_ms in writes.retry.items():
            by_delay[delay_ms].append(delivery_id)
        await deps.queue.enqueue(conn, [
            NewJob(kind=DELIVERY_JOB, payload={"ids": ids}, run_at_ms=now_ms + delay_ms)
            for delay_ms, ids in by_delay.items()])


async def _still_pending(db: Database, conn: Any, ids: list[str]) -> set[str]:
    out: set[str] = set()
    for i in range(0, len(ids), 500):
        query = select(_DL.c.id, _DL.c.state).where(_id_in(db, _DL.c.id, ids[i:i + 500]))
        if not db.is_sqlite:
            query = query.with_for_update()
        out.update(r.id for r in (await conn.execute(query)).all() if r.state == "pending")
    return out


async def _count(conn: Any, app_id: str, platform: Platform,
                 decided: list[tuple[Any, str]], sends: Mapping[str, _Send],
                 now: datetime) -> None:
    """Roll-ups for the deliveries that reached a final state in this batch."""
    if not decided:
        return
    totals: dict[tuple[str, str], int] = defaultdict(int)  # (send id, metric) -> n
    people: dict[tuple[str, str], str] = {}  # first-time scope -> send id
    for r, state in decided:
        if state == "accepted":
            totals[(r.send_id, "sent")] += 1
            people[(f"p:{r.send_id}:{r.person_id}", "sent")] = r.send_id
        else:
            totals[(r.send_id, f"not_sent:{state}")] += 1
    # A person's first accepted device counts them once (even within one batch).
    for scope in await counters.first_times(conn, people):
        totals[(people[scope], "sent_people")] += 1
    await counters.increment(conn, [
        counters.Count(**sends[send_id].keys(app_id, platform.value, now), metric=metric,
                       value=n)
        for (send_id, metric), n in totals.items()])


def _plus(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)
