"""The in-service event bus: how other features learn that an interaction happened.

There is one mechanism, durable and transactional (a "transactional outbox" on the job queue):

1. **Publish.** Whatever records interactions calls ``publish_interactions(conn, queue, ids)``
   inside the transaction that inserts them. It enqueues one ``events.interaction`` job holding
   the new interaction ids, so an interaction is published if and only if it is committed
   (the ingest path does this once per record transaction: one job per batch, not per event).
   The job is due ``PUBLISH_DELAY_MS`` after the commit and wakes nobody: at thousands of
   reports per second a worker then claims the jobs of many batches at once instead of
   running two extra transactions per commit.
2. **Subscribe.** Features register in-process subscribers at bootstrap, in every process
   that runs a worker: ``container.events.subscribe("interaction.opened", handler)``. A
   subscriber is ``async def handler(events: Sequence[InteractionEvent]) -> None`` and gets a
   batch of the events of its topic. Topics: ``interaction.delivered``, ``interaction.opened``,
   ``interaction.clicked``, ``interaction.dismissed``, and ``interaction.*`` (all of them)
   (``InteractionEvent``); ``trigger.<name>`` for each fire of a custom trigger, and
   ``trigger.*`` (``clarion.domain.triggers.TriggerEvent``, published by
   ``publish_trigger`` in the transaction that stores the fire); ``person.created``
   (``PersonCreatedEvent``, published by ``EventBus.publish_people_created`` in the transaction
   that inserts the people: one job per API create, one per chunk of an import);
   ``push.sent``, ``push.not_sent`` and ``push.*`` (``clarion.domain.sends.PushOutcomeEvent``,
   published by ``EventBus.publish_push_outcomes`` in the transactions of fan-out (people
   without a valid device, or not personalised) and delivery (a person's first accepted
   device, or their only device refusing): one job per page or batch). Creating
   people is a hot path (imports of millions), so ``person.created`` is published only while a
   subscriber for it is registered: register it in ``bootstrap.build`` (as every subscriber
   should be), so that every process, API-only ones included, agrees.
3. **Dispatch.** A worker runs the job (``EventBus.dispatch``): it loads the interactions
   by id and calls every subscriber whose topic matches, one after the other. Nothing polls
   the interaction tables.

Delivery semantics:

* **At least once.** A subscriber that raises gets its events again, alone: the dispatcher
  enqueues a job naming only that subscriber (``{"ids": [...], "only": name}``), retried with
  the queue's jittered backoff up to ``CLARION_JOB_MAX_ATTEMPTS`` and then dead-lettered
  (``clarion jobs list --state dead``, ``clarion jobs retry``). The other subscribers are not
  called again. But a worker that dies (or loses its database connection) mid-dispatch has its
  job taken over after the lease, and then *every* subscriber of that job sees its events a
  second time. **Subscribers must be idempotent**: ``InteractionEvent.id`` (the interaction
  row's id, unique and stable) is the dedupe key; ``TriggerEvent.id`` (the firing's) and
  ``(org_id, person_id)`` of a ``PersonCreatedEvent`` are the others'.
* **Ordering.** Within one call, events are in id order, which is commit order for one
  writer. Across calls there is no order: jobs run concurrently on any worker, and retries
  come later. Use ``occurred_at`` (the time the app reported, which may be up to 30 days back)
  for time, never arrival order.
* **Latency.** ``PUBLISH_DELAY_MS`` (0.2 s) up to that plus the worker's poll interval
  (``CLARION_JOB_POLL_SECONDS``, 1 s by default): about a second. Interactions feed journeys
  that wait hours or days; a second is nothing there and buys throughput on the hot path.
* Subscribers run in the worker, outside any transaction: they own their transactions.
* A subscriber name (default: the handler's module and qualified name) is stored in retry
  jobs, so it must stay stable across deployments; a retry job naming a subscriber that no
  longer exists is logged and dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, fields, replace
from typing import Any, ClassVar, Protocol, Self, TypeVar

from clarion.clock import Clock
from clarion.domain.backoff import backoff_seconds
from clarion.domain.interactions import InteractionEvent, InteractionKind
from clarion.domain.sends import PushOutcomeEvent
from clarion.domain.triggers import (
    PERSON_CREATED,
    TRIGGER_NAME,
    PersonCreatedEvent,
    TriggerEvent,
)
from clarion.errors import RetryLater
from clarion.store import interactions as store
from clarion.store import sends as send_store
from clarion.store import triggers as trigger_store
from clarion.store.db import Conn, Database
from clarion.store.jobs import JobQueue
from clarion.store.tasks import Task

log = logging.getLogger(__name__)

PUBLISH_DELAY_MS = 200
ALL_INTERACTIONS = "interaction.*"
TOPICS = frozenset({f"interaction.{k.value}" for k in InteractionKind} | {ALL_INTERACTIONS})
ALL_TRIGGERS = "trigger.*"
PUSH_TOPICS = frozenset({"push.sent", "push.not_sent", "push.*"})


def known_topic(topic: str) -> bool:
    """An interaction topic, ``person.created``, ``trigger.*`` or ``trigger.<a valid name>``
    (a trigger may be declared after its subscribers are registered)."""
    if topic in TOPICS or topic in PUSH_TOPICS or topic in (PERSON_CREATED, ALL_TRIGGERS):
        return True
    return topic.startswith("trigger.") and TRIGGER_NAME.match(topic[8:]) is not None


class _Publication:
    """What the publications share: the ``ids`` of their events, ``only`` the one subscriber a
    retry is for, and their job payload: every field by name (``only`` left out while None),
    ``ids`` read back with ``id_type`` and the other fields as text."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]
    id_type: ClassVar[Callable[[Any], Any]] = str
    ids: Sequence[Any]
    only: str | None

    def encode(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        if out["only"] is None:
            del out["only"]
        return out

    @classmethod
    def decode(cls, payload: Mapping[str, Any]) -> Self:
        values: dict[str, Any] = {"ids": [cls.id_type(i) for i in payload["ids"]]}
        for f in fields(cls):
            if f.name != "ids":
                value = payload[f.name] if f.default is MISSING else payload.get(f.name)
                values[f.name] = None if value is None else str(value)
        build: Callable[..., Self] = cls
        return build(**values)

    def retry(self, ids: list[Any], only: str) -> Self:
        """The same publication of ``ids`` only, for ``only`` one subscriber."""
        return replace(self, ids=ids, only=only)


@dataclass(frozen=True, slots=True)
class Publication(_Publication):
    """Interactions to hand to the subscribers (``only`` one of them: a retry)."""

    id_type = int
    ids: list[int]
    only: str | None = None


@dataclass(frozen=True, slots=True)
class TriggerPublication(_Publication):
    """Trigger fires (firing ids) to hand to the subscribers (``only`` one: a retry)."""

    ids: list[str]
    only: str | None = None


@dataclass(frozen=True, slots=True)
class PeoplePublication(_Publication):
    """People of one org just created (the event is the id: nothing to load)."""

    org_id: str
    ids: list[str]
    only: str | None = None


@dataclass(frozen=True, slots=True)
class OutcomePublication(_Publication):
    """People of one send for whom the push was sent, or not sent (with the reason)."""

    send_id: str
    outcome: str  # sent | not_sent
    ids: list[str]
    reason: str | None = None
    only: str | None = None


INTERACTION_EVENTS: Task[Publication] = Task(
    "events.interaction", Publication.encode, Publication.decode)
PUSH_EVENTS: Task[OutcomePublication] = Task(
    "events.push_outcome", OutcomePublication.encode, OutcomePublication.decode)
TRIGGER_EVENTS: Task[TriggerPublication] = Task(
    "events.trigger", TriggerPublication.encode, TriggerPublication.decode)
PERSON_EVENTS: Task[PeoplePublication] = Task(
    "events.person_created", PeoplePublication.encode, PeoplePublication.decode)

P = TypeVar("P", bound=_Publication)


class _Event(Protocol):
    @property
    def topic(self) -> str: ...


E = TypeVar("E", bound=_Event)
# A subscriber gets a batch of the events of its topic: ``InteractionEvent`` for
# ``interaction.*``, ``TriggerEvent`` for ``trigger.*``, ``PersonCreatedEvent`` for
# ``person.created``, ``PushOutcomeEvent`` for ``push.*``.
Subscriber = Callable[[Sequence[InteractionEvent]], Awaitable[None]]
TriggerSubscriber = Callable[[Sequence[TriggerEvent]], Awaitable[None]]
PersonSubscriber = Callable[[Sequence[PersonCreatedEvent]], Awaitable[None]]
_Handler = Callable[[Sequence[Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Subscription:
    name: str
    topic: str
    handler: _Handler

    def wants(self, event: _Event) -> bool:
        if self.topic.endswith(".*"):
            return event.topic.startswith(self.topic[:-1])
        return self.topic == event.topic


async def publish_interactions(conn: Conn, queue: JobQueue, ids: Sequence[int],
                               *, now_ms: int) -> None:
    """Publish the interactions ``ids``; call inside the transaction that inserted them."""
    if ids:
        await queue.enqueue(conn, [INTERACTION_EVENTS.job(Publication(list(ids)),
                                                          run_at_ms=now_ms + PUBLISH_DELAY_MS)])


async def publish_trigger(conn: Conn, queue: JobQueue, firing_id: str, *, now_ms: int) -> None:
    """Publish a stored fire; call inside the transaction that inserted it."""
    await queue.enqueue(conn, [TRIGGER_EVENTS.job(TriggerPublication([firing_id]),
                                                  run_at_ms=now_ms + PUBLISH_DELAY_MS)])


class EventBus:
    """Subscribers of in-service events and their dispatch; see the module docstring for the
    semantics."""

    def __init__(self, db: Database, queue: JobQueue, clock: Clock) -> None:
        self._db = db
        self._queue = queue
        self._clock = clock
        self._subs: dict[str, _Subscription] = {}
        self._interest: dict[str, Callable[[str], Awaitable[bool]]] = {}

    def subscribe(self, topic: str, handler: Callable[[Sequence[E]], Awaitable[None]], *,
                  name: str | None = None) -> str:
        """Register ``handler`` for ``topic``; returns its name (unique, stable). The handler
        takes the topic's event type (see ``Subscriber``, ``TriggerSubscriber``,
        ``PersonSubscriber``)."""
        if not known_topic(topic):
            known = ", ".join(sorted(TOPICS | PUSH_TOPICS | {PERSON_CREATED, ALL_TRIGGERS}))
            raise ValueError(f"unknown topic {topic!r}; known: {known}, trigger.<name>")
        key = name or f"{handler.__module__}.{getattr(handler, '__qualname__', repr(handler))}"
        if key in self._subs:
            raise ValueError(f"a subscriber named {key!r} is already registered; pass name=")
        self._subs[key] = _Subscription(key, topic, handler)
        return key

    def listened(self, topic: str) -> bool:
        """Whether a subscriber of ``topic`` (or of its family's ``.*``) is registered."""
        family = topic.split(".")[0] + ".*"
        return any(s.topic in (topic, family) for s in self._subs.values())

    async def publish_people_created(self, conn: Conn, org_id: str,
                                     person_ids: Sequence[str]) -> None:
        """Publish ``person.created`` for people just inserted; call inside that transaction.
        Nothing is queued while nobody subscribes (see the module docstring)."""
        if person_ids and self.listened(PERSON_CREATED):
            publication = PeoplePublication(org_id, list(person_ids))
            await self._queue.enqueue(conn, [PERSON_EVENTS.job(
                publication, run_at_ms=self._clock.epoch_ms() + PUBLISH_DELAY_MS)])

    def interest(self, family: str, wants: Callable[[str], Awaitable[bool]]) -> None:
        """Say which orgs the subscribers of a topic family (``push``) care about: events of
        an org ``wants`` says no to are not published at all (a send's push outcomes are one
        job per delivery batch: worth skipping for the orgs that have no use for them)."""
        self._interest[family] = wants

    async def publish_push_outcomes(self, conn: Conn, org_id: str, send_id: str,
                                    outcome: str, person_ids: Sequence[str],
                                    reason: str | None = None) -> None:
        """Publish ``push.<outcome>`` for these people of the send; call inside the
        transaction that records it. Nothing is queued while nobody subscribes, nor for an
        org the subscribers have no interest in (``interest``)."""
        wants = self._interest.get("push")
        if person_ids and self.listened(f"push.{outcome}") and (
                wants is None or await wants(org_id)):
            publication = OutcomePublication(send_id, outcome, list(person_ids), reason)
            await self._queue.enqueue(conn, [PUSH_EVENTS.job(
                publication, run_at_ms=self._clock.epoch_ms() + PUBLISH_DELAY_MS)])

    def unsubscribe(self, name: str) -> None:
        self._subs.pop(name, None)

    @property
    def subscriptions(self) -> dict[str, str]:
        """Subscriber name -> topic."""
        return {s.name: s.topic for s in self._subs.values()}

    async def dispatch(self, publication: Publication, *, attempt: int = 1) -> None:
        """Deliver the interactions to the subscribers (or to ``only`` that one).

        A failing subscriber gets a job of its own (first dispatch) or makes this retry job
        fail with ``RetryLater`` (a dispatch for ``only`` one subscriber)."""
        async def load() -> list[InteractionEvent]:
            return await self.load(publication.ids)

        await self._deliver(publication, INTERACTION_EVENTS, load, lambda e: e.id, attempt)

    async def dispatch_triggers(self, publication: TriggerPublication, *,
                                attempt: int = 1) -> None:
        """Deliver trigger fires, as ``dispatch`` does interactions."""
        async def load() -> list[TriggerEvent]:
            async with self._db.read() as conn:
                return await trigger_store.firings(conn, publication.ids)

        await self._deliver(publication, TRIGGER_EVENTS, load, lambda e: e.id, attempt)

    async def dispatch_people(self, publication: PeoplePublication, *,
                              attempt: int = 1) -> None:
        """Deliver ``person.created`` events, as ``dispatch`` does interactions."""
        async def load() -> list[PersonCreatedEvent]:
            return [PersonCreatedEvent(publication.org_id, p) for p in publication.ids]

        await self._deliver(publication, PERSON_EVENTS, load, lambda e: e.person_id, attempt)

    async def dispatch_push_outcomes(self, publication: OutcomePublication, *,
                                     attempt: int = 1) -> None:
        """Deliver push outcomes, as ``dispatch`` does interactions."""
        p = publication

        async def load() -> list[PushOutcomeEvent]:
            async with self._db.read() as conn:
                send = await send_store.get(conn, p.send_id)
            if send is None or p.outcome not in ("sent", "not_sent"):
                return []
            outcome: Any = p.outcome
            return [PushOutcomeEvent(send.org_id, send.app_id, send.id, person,
                                     send.message_id, send.journey_id, send.journey_step_id,
                                     outcome, p.reason) for person in p.ids]

        await self._deliver(p, PUSH_EVENTS, load, lambda e: e.person_id, attempt)

    async def _deliver(self, publication: P, task: Task[P],
                       load: Callable[[], Awaitable[Sequence[E]]],
                       key: Callable[[E], Any], attempt: int) -> None:
        """Hand the events of ``publication`` to its subscribers; a failing one is retried
        alone, with a ``task`` job of the ids (``key``) of its events."""
        only, count = publication.only, len(publication.ids)
        if only is not None:
            sub = self._subs.get(only)
            if sub is None:
                log.warning("dropping %d events for subscriber %r: it is not registered in "
                            "this process", count, only)
                return
            subs = [sub]
        else:
            subs = list(self._subs.values())
        if not subs or not count:
            return
        events = await load()
        failed: list[tuple[_Subscription, list[E]]] = []
        for sub in subs:
            mine = [e for e in events if sub.wants(e)]
            if not mine:
                continue
            try:
                await sub.handler(mine)
            except Exception as exc:
                if only is not None:
                    raise RetryLater(f"subscriber {sub.name} failed: {exc!r}") from exc
                log.exception("event subscriber %s failed on %d events; retrying it alone",
                              sub.name, len(mine))
                failed.append((sub, mine))
        if failed:
            run_at = self._clock.epoch_ms() + int(backoff_seconds(attempt) * 1000)
            await self._queue.enqueue_now([
                task.job(publication.retry([key(e) for e in mine], sub.name), run_at_ms=run_at)
                for sub, mine in failed])

    async def load(self, ids: Sequence[int]) -> list[InteractionEvent]:
        """The interactions ``ids`` as events, in id order (missing ids are skipped)."""
        async with self._db.read() as conn:
            return await store.by_ids(conn, ids)
