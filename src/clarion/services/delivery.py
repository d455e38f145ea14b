"""Fan-out and delivery: the policy side of sending (the adapters only speak protocols).

Fan-out (``send.fanout`` jobs) expands a send page by page: each page of people is one
transaction that writes one delivery row per (send, device) — unique, so a re-run writes
nothing twice — the ``delivery.send`` jobs for those rows, and the job for the next page.

Delivery (``delivery.send`` jobs) loads the still-pending deliveries of its jobs, groups them
by (app, platform), waits for the app's rate limit, calls the platform's sender outside any
transaction and applies every outcome in one transaction:

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
handler can be repeated: ``worker_concurrency × delivery batch`` notifications per crash.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
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
from clarion.services import apps as apps_service
from clarion.services.sending import FANOUT_JOB
from clarion.store import counters
from clarion.store import tables as t
from clarion.store.db import Database
from clarion.store.jobs import JobQueue, NewJob

log = logging.getLogger(__name__)

DELIVERY_JOB = "delivery.send"
PEOPLE_PER_PAGE = 500
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


def _insert_ignore(db: Database) -> Any:
    dialect = sqlite if db.is_sqlite else postgresql
    return dialect.insert(_DL).on_conflict_do_nothing(index_elements=["send_id", "device_id"])


# ------------------------------------------------------------------------------- fan-out


async def fan_out(*, deps: Deps, send_id: str, offset: int) -> None:
    """Expand one page of the send's people into deliveries (idempotent per page)."""
    async with deps.db.read() as conn:
        send = (await conn.execute(select(_S).where(_S.c.id == send_id))).first()
    if send is None or send.fanned_out_people > offset or send.state == "fanned_out":
        return  # deleted, or this page was already committed by an earlier run
    people = list(send.user_ids)[offset:offset + PEOPLE_PER_PAGE]
    async with deps.db.read() as conn:
        devices = (await conn.execute(select(_D.c.id, _D.c.person_id, _D.c.platform).where(
            _D.c.app_id == send.app_id, _D.c.person_id.in_(people), _D.c.state == "active",
        ).order_by(_D.c.person_id, _D.c.id))).all()
    now = deps.clock.now()
    rows = [{"id": str(uuid.uuid4()), "send_id": send_id, "org_id": send.org_id,
             "app_id": send.app_id, "person_id": d.person_id, "device_id": d.id,
             "platform": d.platform, "state": "pending", "reason": None, "detail": None,
             "provider_id": None, "attempts": 0, "created_at": now, "updated_at": now}
            for d in devices]
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
            await conn.execute(_insert_ignore(deps.db), rows)
        ids = [r["id"] for r in rows]
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


def _send_keys(send: Any) -> dict[str, Any]:
    """The report keys of a send (journey keys are null for API sends)."""
    return {"org_id": send.org_id, "app_id": send.app_id, "send_id": send.id,
            "journey_id": send.journey_id, "journey_step_id": send.journey_step_id,
            "message_id": send.message_id}


# ------------------------------------------------------------------------------ delivery


@dataclass
class _Item:
    row: Any
    outcome: Outcome | None = None


async def deliver(*, deps: Deps, delivery_ids: Sequence[str]) -> None:
    """Send every still-pending delivery among ``delivery_ids`` and apply the outcomes."""
    rows = await _load(deps.db, delivery_ids)
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in rows:
        groups[(row.app_id, row.platform)].append(row)
    await asyncio.gather(*(_deliver_group(deps, app_id, Platform(platform), items)
                           for (app_id, platform), items in groups.items()))


async def _load(db: Database, ids: Sequence[str]) -> list[Any]:
    out: list[Any] = []
    async with db.read() as conn:
        for i in range(0, len(ids), 500):
            out.extend((await conn.execute(
                select(_DL.c.id, _DL.c.send_id, _DL.c.app_id, _DL.c.platform, _DL.c.attempts,
                       _DL.c.device_id, _DL.c.person_id, _S.c.org_id, _S.c.journey_id,
                       _S.c.journey_step_id, _S.c.message_id, _D.c.token, _D.c.web_keys,
                       _D.c.state.label("device_state"), _S.c.message, _S.c.expires_at)
                .join(_D, _D.c.id == _DL.c.device_id, isouter=True)
                .join(_S, _S.c.id == _DL.c.send_id)
                .where(_DL.c.id.in_(ids[i:i + 500]), _DL.c.state == "pending")
            )).all())
    return out


async def _deliver_group(deps: Deps, app_id: str, platform: Platform, rows: list[Any]) -> None:
    now = deps.clock.now()
    items = [_Item(r) for r in rows]
    live: list[_Item] = []
    for it in items:
        if _expired(it.row.expires_at, now):
            it.outcome = Outcome(it.row.id, OutcomeKind.REJECTED, reason="Expired",
                                 detail="the message's time to live ran out before delivery")
        elif it.row.token is None or it.row.device_state != "active":
            it.outcome = Outcome(it.row.id, OutcomeKind.REJECTED, reason="DeviceGone",
                                 detail="the device was removed or invalidated after the send "
                                 "was queued")
        else:
            live.append(it)
    if live:
        await _send_live(deps, app_id, platform, live)
    await _apply(deps, app_id, platform, items)


def _expired(expires_at: datetime, now: datetime) -> bool:
    if expires_at.tzinfo is None:  # SQLite returns naive UTC
        return expires_at.timestamp() < now.replace(tzinfo=None).timestamp()
    return expires_at < now


async def _send_live(deps: Deps, app_id: str, platform: Platform, live: list[_Item]) -> None:
    sender = deps.senders.get(platform)
    creds = await apps_service.load_platform_credentials(
        db=deps.db, box=deps.box, app_id=app_id, platform=platform)
    paused = await apps_service.credentials_invalid(db=deps.db, app_id=app_id, platform=platform)
    if sender is None or creds is None or paused:
        why = ("no sender for this platform" if sender is None else
               "the app no longer has this platform" if creds is None else
               f"the app's {platform.value} credentials were refused: {paused}")
        for it in live:
            it.outcome = Outcome(it.row.id, OutcomeKind.CREDENTIAL_ERROR, reason="Paused",
                                 detail=f"sending paused: {why}. Fix the app configuration "
                                 "(`clarion apps update`); pending deliveries then resume.")
        return
    batch = [DeviceSend(
        delivery_id=it.row.id,
        device=DeviceAddress(platform, it.row.token, it.row.web_keys),
        notification=_notification(deps, it.row),
    ) for it in live]
    async with deps.limiter.slot(app_id, platform):
        await deps.limiter.wait(app_id, platform, len(batch))
        try:
            outcomes = await sender.send(creds, batch)
        except Exception as exc:  # an adapter bug must not lose the deliveries
            log.exception("the %s sender raised", platform.value)
            outcomes = [Outcome(s.delivery_id, OutcomeKind.RETRY_LATER,
                                reason=type(exc).__name__, detail=str(exc)) for s in batch]
    by_id = {o.delivery_id: o for o in outcomes}
    for it in live:
        it.outcome = by_id.get(it.row.id) or Outcome(
            it.row.id, OutcomeKind.RETRY_LATER, reason="NoOutcome",
            detail="the provider adapter returned no outcome for this device")


def _notification(deps: Deps, row: Any) -> Notification:
    """The device gets a tracked link (records the click, then redirects to the original) and
    the original link for apps without tracking consent; trackingId is the send id."""
    message = Message.from_dict(row.message)
    link = links.tracked_url(deps.public_url, deps.link_key, row.id) if message.link else None
    return message.notification(tracking_id=row.send_id, link=link)


_FINAL = {
    OutcomeKind.ACCEPTED: "accepted",
    OutcomeKind.INVALID_TOKEN: "invalid_token",
    OutcomeKind.MISMATCH: "mismatch",
    OutcomeKind.REJECTED: "rejected",
}


async def _apply(deps: Deps, app_id: str, platform: Platform, items: list[_Item]) -> None:
    now = deps.clock.now()
    finals: list[dict[str, Any]] = []
    device_updates: list[dict[str, Any]] = []
    retry: dict[int, list[str]] = defaultdict(list)  # delay ms -> ids
    credential_reason: str | None = None
    for it in items:
        o = it.outcome
        assert o is not None
        attempts = it.row.attempts + 1
        state = _FINAL.get(o.kind)
        if o.kind in (OutcomeKind.RETRY_LATER, OutcomeKind.CREDENTIAL_ERROR):
            if o.kind is OutcomeKind.CREDENTIAL_ERROR and o.reason != "Paused":
                credential_reason = o.detail or o.reason or "credential error"
            delay = (PAUSE_SECONDS if o.kind is OutcomeKind.CREDENTIAL_ERROR else
                     honour_retry_after(backoff_seconds(attempts), o.retry_after_seconds))
            gives_up = (o.kind is OutcomeKind.RETRY_LATER and attempts >= deps.policy.max_attempts)
            if gives_up or _expired(it.row.expires_at, _plus(now, delay)):
                state = "expired"
                o = Outcome(o.delivery_id, o.kind, reason=o.reason,
                            detail=f"gave up after {attempts} attempt(s): {o.detail or o.reason}")
            else:
                retry[int(delay * 1000)].append(it.row.id)
                finals.append({"b_id": it.row.id, "b_state": "pending", "b_reason": o.reason,
                               "b_detail": o.detail, "b_provider_id": None,
                               "b_attempts": attempts, "b_now": now})
                continue
        finals.append({"b_id": it.row.id, "b_state": state, "b_reason": o.reason,
                       "b_detail": o.detail, "b_provider_id": o.provider_id,
                       "b_attempts": attempts, "b_now": now})
        if o.kind in (OutcomeKind.INVALID_TOKEN, OutcomeKind.MISMATCH):
            device_updates.append({"b_device": it.row.device_id,
                                   "b_dstate": "invalid" if o.kind is OutcomeKind.INVALID_TOKEN
                                   else "mismatch",
                                   "b_dreason": f"{o.reason}: {o.detail}" if o.detail else o.reason,
                                   "b_now": now})
    if credential_reason is not None:
        await apps_service.mark_credentials_invalid(
            db=deps.db, clock=deps.clock, app_id=app_id, platform=platform,
            reason=credential_reason)
    async with deps.db.write() as conn:
        await _count(conn, items, finals, now)
        if finals:
            await conn.execute(
                update(_DL).where(_DL.c.id == bindparam("b_id"), _DL.c.state == "pending")
                .values(state=bindparam("b_state"), reason=bindparam("b_reason"),
                        detail=bindparam("b_detail"), provider_id=bindparam("b_provider_id"),
                        attempts=bindparam("b_attempts"), updated_at=bindparam("b_now")),
                finals)
        if device_updates:
            await conn.execute(
                update(_D).where(_D.c.id == bindparam("b_device"))
                .values(state=bindparam("b_dstate"), state_reason=bindparam("b_dreason"),
                        state_changed_at=bindparam("b_now"), updated_at=bindparam("b_now")),
                device_updates)
        if retry:
            now_ms = deps.clock.epoch_ms()
            await deps.queue.enqueue(conn, [
                NewJob(kind=DELIVERY_JOB, payload={"ids": ids}, run_at_ms=now_ms + delay_ms)
                for delay_ms, ids in retry.items()])


async def _count(conn: Any, items: list[_Item], finals: list[dict[str, Any]],
                 now: datetime) -> None:
    """Roll-ups for the deliveries that reached a final state in this batch."""
    rows = {it.row.id: it.row for it in items}
    decided = [(rows[f["b_id"]], f["b_state"]) for f in finals if f["b_state"] != "pending"]
    if not decided:
        return
    firsts = await counters.first_times(conn, [
        (f"p:{r.send_id}:{r.person_id}", "sent") for r, state in decided if state == "accepted"])
    counts = []
    for r, state in decided:
        keys = {"org_id": r.org_id, "app_id": r.app_id, "send_id": r.send_id,
                "platform": r.platform, "at": now, "journey_id": r.journey_id,
                "journey_step_id": r.journey_step_id, "message_id": r.message_id}
        if state == "accepted":
            counts.append(counters.Count(**keys, metric="sent"))
            scope = (f"p:{r.send_id}:{r.person_id}", "sent")
            if scope in firsts:  # a person's first accepted device (once, even in one batch)
                counts.append(counters.Count(**keys, metric="sent_people"))
                firsts.discard(scope)
        else:
            counts.append(counters.Count(**keys, metric=f"not_sent:{state}"))
    await counters.increment(conn, counts)


def _plus(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)
