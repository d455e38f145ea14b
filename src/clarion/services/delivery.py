"""Delivery: the policy side of sending (the adapters only speak protocols).

``Delivery.deliver`` (``delivery.send`` jobs) loads its deliveries by primary key, keeps the
still-pending ones, reads each send's message once, groups the deliveries by (app, platform),
waits for the app's rate limit, calls the platform's sender outside any transaction and applies
every outcome in one transaction (deliveries another worker finished meanwhile are left alone
and not counted again):

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

A personalised send's deliveries take their person's rendering (``send_messages``, read once
per batch by (send, person)); a test send's notifications carry an empty trackingId and the
link untracked (CIJ contract §4).

Duplicates: a worker killed after the provider accepted a batch but before the outcome was
committed sends that batch again after its lease expires. At most one batch per in-flight
handler can be repeated: ``worker_concurrency × delivery_jobs_per_call × delivery_batch_size``
notifications per crash (``clarion.worker.tasks``: a worker runs at most that many).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from clarion.clock import Clock
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
from clarion.domain.push_messages import TEST_TRACKING_ID
from clarion.services.apps import Apps
from clarion.services.delivery_policy import DeliveryPolicy, Limiter
from clarion.services.personalised import is_personalised, is_test, static_message
from clarion.services.provider_trouble import TroubleLog, send_or_retry_later
from clarion.store import counters
from clarion.store import messages as message_store
from clarion.store import sends as store
from clarion.store.db import Conn, Database
from clarion.store.jobs import JobQueue
from clarion.store.tasks import Task

log = logging.getLogger(__name__)

PAUSE_SECONDS = 60.0


def _ids(payload: Mapping[str, Any]) -> list[str]:
    return [str(i) for i in payload["ids"]]


# A job names up to CLARION_DELIVERY_BATCH_SIZE deliveries by id.
DELIVER: Task[list[str]] = Task("delivery.send", lambda ids: {"ids": list(ids)}, _ids)


@dataclass(frozen=True, slots=True)
class _Send:
    """What the deliveries of one send share: parsed once per send per batch."""

    row: store.SendToDeliver
    message: Message | None  # None: personalised, each person has theirs (``personal``)
    notification: Notification | None  # the same for every device (no link to track)
    personal: Mapping[str, Message] = field(default_factory=dict)  # person id -> message
    test: bool = False  # CIJ test send: empty trackingId, link not tracked

    def keys(self, app_id: str, platform: str, at: datetime) -> dict[str, Any]:
        s = self.row
        return {"org_id": s.org_id, "app_id": app_id, "send_id": s.id, "platform": platform,
                "at": at, "journey_id": s.journey_id, "journey_step_id": s.journey_step_id,
                "message_id": s.message_id}


_FINAL = {
    OutcomeKind.ACCEPTED: "accepted",
    OutcomeKind.INVALID_TOKEN: "invalid_token",
    OutcomeKind.MISMATCH: "mismatch",
    OutcomeKind.REJECTED: "rejected",
}


@dataclass(slots=True)
class _Writes:
    finals: list[tuple[Any, ...]]  # store.finish's rows, the delivery id first
    decided: list[tuple[store.PendingDelivery, str]]  # (row, final state)
    retry: dict[str, int]  # delivery id -> delay ms
    device_updates: dict[str, dict[str, Any]]  # delivery id -> device update

    def only(self, ids: set[str]) -> _Writes:
        """What remains to write for the deliveries ``ids`` (the others finished elsewhere)."""
        if len(ids) == len(self.finals):
            return self
        return _Writes([f for f in self.finals if f[0] in ids],
                       [(r, state) for r, state in self.decided if r.id in ids],
                       {i: d for i, d in self.retry.items() if i in ids},
                       {i: u for i, u in self.device_updates.items() if i in ids})


def _expired(expires_at: datetime, now: datetime) -> bool:
    return expires_at < now


# (conn, org id, send id, "sent" | "not_sent", people, reason): publish push outcomes in
# ``conn``'s transaction (``EventBus.publish_push_outcomes``; fan-out uses it too).
OutcomePublisher = Callable[[Conn, str, str, str, Sequence[str], str | None], Awaitable[None]]


async def no_outcomes(_c: Conn, _org: str, _s: str, _o: str, _p: Sequence[str],
                      _r: str | None) -> None:
    return None


class Delivery:
    def __init__(self, *, db: Database, clock: Clock, queue: JobQueue, apps: Apps,
                 senders: Mapping[Platform, Sender], policy: DeliveryPolicy,
                 public_url: str, link_key: bytes,
                 outcomes: OutcomePublisher = no_outcomes) -> None:
        self._outcomes = outcomes  # push.sent / push.not_sent per person
        self._db = db
        self._clock = clock
        self._queue = queue
        self._apps = apps
        self._senders = senders
        self._policy = policy
        self._limiter = Limiter(policy)
        self._public_url = public_url
        self._link_key = link_key
        self._trouble = TroubleLog(log, what=("delivery", "deliveries"))

    async def deliver(self, delivery_ids: Sequence[str]) -> None:
        """Send every still-pending delivery among ``delivery_ids`` and apply the
        outcomes."""
        rows, sends = await self._load(delivery_ids)
        groups: dict[tuple[str, str], list[store.PendingDelivery]] = defaultdict(list)
        for row in rows:
            groups[(row.app_id, row.platform)].append(row)
        await asyncio.gather(*(self._deliver_group(app_id, Platform(platform), items, sends)
                               for (app_id, platform), items in groups.items()))

    async def _load(self, ids: Sequence[str]
                    ) -> tuple[list[store.PendingDelivery], dict[str, _Send]]:
        async with self._db.read() as conn:
            rows = await store.pending_deliveries(conn, ids)
            found = await store.sends_to_deliver(conn, sorted({r.send_id for r in rows}))
            personalised = {s.id for s in found if is_personalised(s.message)}
            rendered = await message_store.send_messages(conn, [
                (r.send_id, r.person_id) for r in rows if r.send_id in personalised]
            ) if personalised else {}
        sends: dict[str, _Send] = {}
        for s in found:
            test = is_test(s.message)
            tracking_id = TEST_TRACKING_ID if test else s.id
            if s.id in personalised:
                personal = {person: Message.from_dict(m)
                            for (send_id, person), m in rendered.items() if send_id == s.id}
                sends[s.id] = _Send(s, None, None, personal, test)
                continue
            message = Message.from_dict(static_message(s.message) or s.message)
            sends[s.id] = _Send(s, message, None if message.link and not test else
                                message.notification(tracking_id=tracking_id), test=test)
        return [r for r in rows if r.send_id in sends], sends  # a deleted send: nothing to do

    async def _deliver_group(self, app_id: str, platform: Platform,
                             rows: list[store.PendingDelivery],
                             sends: Mapping[str, _Send]) -> None:
        now = self._clock.now()
        expired = {sid: _expired(s.row.expires_at, now) for sid, s in sends.items()}
        outcomes: dict[str, Outcome] = {}
        live: list[store.PendingDelivery] = []
        for r in rows:
            if expired[r.send_id]:
                outcomes[r.id] = Outcome(r.id, OutcomeKind.REJECTED, reason="Expired",
                                         detail="the message's time to live ran out before "
                                         "delivery")
            elif sends[r.send_id].message is None and r.person_id not in sends[
                    r.send_id].personal:
                outcomes[r.id] = Outcome(r.id, OutcomeKind.REJECTED, reason="NotRendered",
                                         detail="the person's personalised message is missing "
                                         "(the send was being deleted?)")
            elif r.token is None or r.device_state != "active":
                outcomes[r.id] = Outcome(r.id, OutcomeKind.REJECTED, reason="DeviceGone",
                                         detail="the device was removed or invalidated after "
                                         "the send was queued")
            else:
                live.append(r)
        if live:
            await self._send_live(app_id, platform, live, sends, outcomes)
        await self._apply(app_id, platform, rows, sends, outcomes)

    async def _send_live(self, app_id: str, platform: Platform,
                         live: list[store.PendingDelivery], sends: Mapping[str, _Send],
                         outcomes: dict[str, Outcome]) -> None:
        sender = self._senders.get(platform)
        creds = await self._apps.platform_credentials(app_id, platform)
        paused = await self._apps.credentials_invalid(app_id, platform)
        if sender is None or creds is None or paused:
            why = ("no sender for this platform" if sender is None else
                   "the app no longer has this platform" if creds is None else
                   f"the app's {platform.value} credentials were refused: {paused}")
            for r in live:
                outcomes[r.id] = Outcome(r.id, OutcomeKind.CREDENTIAL_ERROR, reason="Paused",
                                         detail=f"sending paused: {why}. Fix the app "
                                         "configuration (`clarion apps update`); pending "
                                         "deliveries then resume.")
            return
        batch = [DeviceSend(
            delivery_id=r.id,
            device=DeviceAddress(platform, r.token or "", r.web_keys),
            notification=self._notification(sends[r.send_id], r),
        ) for r in live]
        async with self._limiter.slot(app_id, platform):
            await self._limiter.wait(app_id, platform, len(batch))
            got = await send_or_retry_later(sender, platform, creds, batch, logger=log,
                                            failed="the %s sender raised",
                                            detail="Clarion failed while sending")
        del batch
        for o in got:
            outcomes[o.delivery_id] = o
        for r in live:
            if r.id not in outcomes:
                outcomes[r.id] = Outcome(
                    r.id, OutcomeKind.RETRY_LATER, reason="NoOutcome",
                    detail="the provider adapter returned no outcome for this device")

    def _notification(self, send: _Send, row: store.PendingDelivery) -> Notification:
        """The device gets a tracked link (records the click, then redirects to the
        original) and the original link for apps without tracking consent; trackingId is the
        send id. A test send's is empty and its link is not tracked (CIJ contract §4)."""
        if send.notification is not None:
            return send.notification
        message = send.message if send.message is not None else send.personal[row.person_id]
        if send.test:
            return message.notification(tracking_id=TEST_TRACKING_ID)
        if not message.link:
            return message.notification(tracking_id=send.row.id)
        link = links.tracked_url(self._public_url, self._link_key, row.id)
        return message.notification(tracking_id=send.row.id, link=link)

    async def _apply(self, app_id: str, platform: Platform, rows: list[store.PendingDelivery],
                     sends: Mapping[str, _Send], outcomes: Mapping[str, Outcome]) -> None:
        now = self._clock.now()
        self._trouble.batch(app_id, platform, [outcomes[r.id] for r in rows])
        writes = _Writes([], [], {}, {})
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
                gives_up = (o.kind is OutcomeKind.RETRY_LATER
                            and attempts >= self._policy.max_attempts)
                if gives_up or _expired(sends[r.send_id].row.expires_at,
                                        now + timedelta(seconds=delay)):
                    state = "expired"
                    o = Outcome(o.delivery_id, o.kind, reason=o.reason,
                                detail=f"gave up after {attempts} attempt(s): "
                                f"{o.detail or o.reason}")
                else:
                    writes.retry[r.id] = int(delay * 1000)
                    writes.finals.append((r.id, "pending", o.reason, o.detail, None, attempts,
                                          now))
                    continue
            assert state is not None
            writes.decided.append((r, state))
            writes.finals.append((r.id, state, o.reason, o.detail, o.provider_id, attempts,
                                  now))
            if o.kind in (OutcomeKind.INVALID_TOKEN, OutcomeKind.MISMATCH):
                writes.device_updates[r.id] = {
                    "b_device": r.device_id,
                    "b_dstate": "invalid" if o.kind is OutcomeKind.INVALID_TOKEN else "mismatch",
                    "b_dreason": f"{o.reason}: {o.detail}" if o.detail else o.reason,
                    "b_now": now}
        if credential_reason is not None:
            await self._apps.mark_credentials_invalid(app_id, platform, credential_reason)
        try:
            async with self._db.write() as conn:
                done = await store.finish(conn, writes.finals)
                await self._write_rest(conn, app_id, platform, writes.only(done), sends, now)
        except store.FinishedElsewhere:
            async with self._db.write() as conn:
                done = await store.finish_checked(conn, writes.finals)
                await self._write_rest(conn, app_id, platform, writes.only(done), sends, now)

    async def _write_rest(self, conn: Conn, app_id: str, platform: Platform, writes: _Writes,
                          sends: Mapping[str, _Send], now: datetime) -> None:
        """What follows the outcome UPDATE: roll-ups, device states and retry jobs."""
        people = await _count(conn, app_id, platform, writes.decided, sends, now)
        for (send_id, outcome, reason), persons in people.items():
            await self._outcomes(conn, sends[send_id].row.org_id, send_id, outcome, persons,
                                 reason)
        await store.set_device_states(conn, list(writes.device_updates.values()))
        if writes.retry:
            now_ms = self._clock.epoch_ms()
            by_delay: dict[int, list[str]] = defaultdict(list)
            for delivery_id, delay_ms in writes.retry.items():
                by_delay[delay_ms].append(delivery_id)
            await self._queue.enqueue(conn, [DELIVER.job(ids, run_at_ms=now_ms + delay_ms)
                                             for delay_ms, ids in by_delay.items()])


async def _count(conn: Conn, app_id: str, platform: Platform,
                 decided: list[tuple[store.PendingDelivery, str]], sends: Mapping[str, _Send],
                 now: datetime) -> dict[tuple[str, str, str | None], list[str]]:
    """Roll-ups for the deliveries that reached a final state in this batch; returns the
    people whose push this batch decided, by (send id, sent | not_sent, reason): sent when
    the first of their devices accepted it, not sent when their only device refused it."""
    outcomes: dict[tuple[str, str, str | None], list[str]] = defaultdict(list)
    if not decided:
        return outcomes
    totals: dict[tuple[str, str], int] = defaultdict(int)  # (send id, metric) -> n
    people: dict[tuple[str, str], tuple[str, str]] = {}  # first-time scope -> (send, person)
    for r, state in decided:
        if state == "accepted":
            totals[(r.send_id, "sent")] += 1
            if r.sole:  # the person's only device: accepted once (store.finish), counted once
                totals[(r.send_id, "sent_people")] += 1
                outcomes[(r.send_id, "sent", None)].append(r.person_id)
            else:
                people[(f"p:{r.send_id}:{r.person_id}", "sent")] = (r.send_id, r.person_id)
        else:
            totals[(r.send_id, f"not_sent:{state}")] += 1
            if r.sole:
                outcomes[(r.send_id, "not_sent", state)].append(r.person_id)
    # A person with several devices: the first accepted counts them once (even within one
    # batch).
    for scope in await counters.first_times(conn, people):
        send_id, person_id = people[scope]
        totals[(send_id, "sent_people")] += 1
        outcomes[(send_id, "sent", None)].append(person_id)
    await counters.increment(conn, [
        counters.Count(**sends[send_id].keys(app_id, platform.value, now), metric=metric,
                       value=n)
        for (send_id, metric), n in totals.items()])
    return outcomes
