"""The journey engine: one person's position in one journey version, advanced by a pure
``step()``.

``step(journey, instance, event, now, facts) -> (instance', actions)`` has no I/O and no clock
of its own: the runtime passes ``now`` (from the injected clock) and ``facts`` (what is known of
the person: condition results, time zone, interactions already recorded, A/B winners), applies
the actions (send a push, schedule a timer, await an interaction, record the end) and stores
the new instance. Replaying an event the instance has already moved past changes nothing and
asks for nothing, so a redelivered event or a stale timer is harmless.

A wait for an interaction ends at its deadline, but an open made just before the deadline
reaches the engine later (the report is accepted, recorded, then published): the deadline's
timer therefore fires ``LATE_INTERACTION_GRACE`` after the deadline, an ``Interaction`` that
happened before the deadline still answers ``yes`` until then, and the timer answers ``yes``
when the person's recorded interactions show one (``facts.interacted``), else ``no``.

The instance's ``path`` lists every step visit in order. Every visit but the last is
*processed*; the last one is *processing* while the person is inside, *processed* when they
reached the end, and an *exit* (with ``done_reason``) when they left early. The per-step report
(``clarion.domain.journeys.tally``) is read off that, so ``inflow = processing + processed +
exit`` holds by construction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clarion.domain.journeys.document import (
    END,
    BranchStep,
    EndStep,
    Journey,
    PushStep,
    SplitStep,
    WaitForInteractionStep,
    WaitStep,
)
from clarion.domain.journeys.durations import MAX_WAIT

Status = Literal["new", "active", "waiting", "done"]
Variant = Literal["a", "b"]

COMPLETED = "completed"  # reached the end
EXIT_TRIGGER = "exit_trigger"
LOOP_GUARD = "loop_guard"  # a loop without a wait (refused by validation; never spin anyway)
# How long after a wait's deadline an interaction made before it may still arrive (the time an
# open takes from the device's report to the engine: accepted, recorded, published).
LATE_INTERACTION_GRACE = timedelta(seconds=5)


class Facts(Protocol):
    """What the runtime knows of the person when an event arrives."""

    def matches(self, condition: str) -> bool:
        """The condition (a ``when``) holds for the person and the trigger data at hand."""
        ...

    def time_zone(self) -> str | None:
        """The person's IANA time zone (None: UTC)."""
        ...

    def interacted(self, step_id: str, interaction: str) -> bool:
        """The person already opened/clicked the push of ``step_id`` (this entry)."""
        ...

    def winner(self, step_id: str) -> Variant | None:
        """The A/B test of ``step_id`` has ended with this winner (None: still running)."""
        ...


@dataclass(frozen=True, slots=True)
class Awaiting:
    kind: Literal["interaction", "trigger"]
    key: str  # the push step id, or the trigger name
    interaction: str | None = None  # opened | clicked, for kind "interaction"


@dataclass(frozen=True, slots=True)
class Instance:
    journey_id: str
    version: int
    person_id: str
    entry_no: int = 1
    status: Status = "new"
    step_id: str | None = None  # where the person is (or was last, once done)
    waiting_until: datetime | None = None
    waiting_for: Awaiting | None = None
    variants: tuple[tuple[str, Variant], ...] = ()
    path: tuple[str, ...] = ()
    done_reason: str | None = None
    goal_met: bool = False

    @property
    def done(self) -> bool:
        return self.status == "done"

    def variant(self, step_id: str) -> Variant | None:
        return dict(self.variants).get(step_id)


# ------------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Entered:
    pass


@dataclass(frozen=True, slots=True)
class TimerFired:
    step_id: str


@dataclass(frozen=True, slots=True)
class Interaction:
    step_id: str  # the push step whose message was opened or clicked
    interaction: str  # opened | clicked
    at: datetime | None = None  # when it happened (None: now); after the deadline it is late


@dataclass(frozen=True, slots=True)
class TriggerFired:
    name: str  # facts.matches(...) evaluates conditions against its data


@dataclass(frozen=True, slots=True)
class Exit:
    reason: str  # journey_stopped, person_deleted, ...


Event = Entered | TimerFired | Interaction | TriggerFired | Exit


# ------------------------------------------------------------------------------ actions


@dataclass(frozen=True, slots=True)
class SendPush:
    step_id: str
    message_id: str
    variant: Variant | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    """Wake the instance with ``TimerFired(step_id)`` at ``at``."""

    at: datetime
    step_id: str


@dataclass(frozen=True, slots=True)
class Await:
    kind: Literal["interaction", "trigger"]
    key: str
    deadline: datetime


@dataclass(frozen=True, slots=True)
class Done:
    reason: str


Action = SendPush | Schedule | Await | Done


# ------------------------------------------------------------------------- stable draws


def bucket(*parts: str) -> int:
    """A stable number in 0..9999 for these parts: the same person always lands in the same
    A/B variant or split share, on every worker and after every restart."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


def ab_variant(journey_id: str, step_id: str, person_id: str, share_a: int) -> Variant:
    return "a" if bucket(journey_id, step_id, person_id) < share_a * 100 else "b"


def local_time_after(now: datetime, hour: int, minute: int, zone: str | None) -> datetime:
    """The next ``hour:minute`` in the zone strictly after ``now`` (UTC when the zone is
    unknown: a wrong time zone must not stop the journey)."""
    try:
        tz = ZoneInfo(zone) if zone else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    local = now.astimezone(tz)
    candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate <= local:
        candidate = (local + timedelta(days=1)).replace(hour=hour, minute=minute, second=0,
                                                        microsecond=0)
    return candidate.astimezone(now.tzinfo)


# --------------------------------------------------------------------------------- step


def step(journey: Journey, instance: Instance, event: Event, now: datetime, facts: Facts
         ) -> tuple[Instance, list[Action]]:
    """Apply one event to one person's instance (pure; see the module docstring)."""
    if instance.done:
        return instance, []
    match event:
        case Entered():
            if instance.status != "new":
                return instance, []
            return _run(journey, instance, journey.first, now, facts)
        case Exit(reason=reason):
            return _finish(instance, reason)
        case TriggerFired(name=name):
            return _trigger(journey, instance, name, now, facts)
        case TimerFired(step_id=step_id):
            return _timer(journey, instance, step_id, now, facts)
        case Interaction(step_id=step_id, interaction=kind):
            awaiting = instance.waiting_for
            if (instance.status == "waiting" and awaiting is not None
                    and awaiting.kind == "interaction" and awaiting.key == step_id
                    and _satisfies(kind, awaiting.interaction)
                    and not _late(event, instance, now)):
                return _answer(journey, instance, True, now, facts)
            return instance, []


def _late(event: Interaction, instance: Instance, now: datetime) -> bool:
    """The interaction happened after the wait's deadline (it arrived during the grace)."""
    deadline = instance.waiting_until
    return deadline is not None and (event.at or now) > deadline


def _satisfies(got: str, wanted: str | None) -> bool:
    # A click on a notification opens it: a wait for "opened" is answered by a click too.
    return got == wanted or (wanted == "opened" and got == "clicked")


def _trigger(journey: Journey, instance: Instance, name: str, now: datetime, facts: Facts
             ) -> tuple[Instance, list[Action]]:
    if instance.status == "new":
        return instance, []
    goal = journey.goal
    if (goal is not None and not instance.goal_met and goal.trigger == name
            and (goal.when is None or facts.matches(goal.when))):
        instance = replace(instance, goal_met=True)
    for ref in journey.exit_triggers:
        if ref.trigger == name and (ref.when is None or facts.matches(ref.when)):
            return _finish(instance, f"{EXIT_TRIGGER}:{name}")
    awaiting = instance.waiting_for
    if instance.status == "waiting" and awaiting is not None and awaiting.kind == "trigger" \
            and awaiting.key == name:
        assert instance.step_id is not None
        wait = journey.get(instance.step_id)
        if isinstance(wait, WaitForInteractionStep) and (wait.when is None
                                                         or facts.matches(wait.when)):
            return _answer(journey, instance, True, now, facts)
    return instance, []


def _timer(journey: Journey, instance: Instance, step_id: str, now: datetime, facts: Facts
           ) -> tuple[Instance, list[Action]]:
    if instance.status != "waiting" or instance.step_id != step_id \
            or instance.waiting_until is None:
        return instance, []  # stale: the person has moved on
    wake = instance.waiting_until + (
        LATE_INTERACTION_GRACE if instance.waiting_for is not None
        and instance.waiting_for.kind == "interaction" else timedelta(0))
    if now < wake:
        return instance, [Schedule(wake, step_id)]  # early: wake again
    current = journey.get(step_id)
    if isinstance(current, WaitForInteractionStep):
        awaiting = instance.waiting_for
        # The open may be recorded while its event is still on the way: the record decides.
        yes = (awaiting is not None and awaiting.kind == "interaction"
               and awaiting.interaction is not None
               and facts.interacted(awaiting.key, awaiting.interaction))
        return _answer(journey, instance, yes, now, facts)
    assert isinstance(current, WaitStep)
    resumed = replace(instance, status="active", waiting_until=None)
    return _run(journey, resumed, current.next or journey.following(step_id), now, facts)


def _answer(journey: Journey, instance: Instance, yes: bool, now: datetime, facts: Facts
            ) -> tuple[Instance, list[Action]]:
    assert instance.step_id is not None
    wait = journey.get(instance.step_id)
    assert isinstance(wait, WaitForInteractionStep)
    resumed = replace(instance, status="active", waiting_until=None, waiting_for=None)
    return _run(journey, resumed, wait.yes if yes else wait.no, now, facts)


def _finish(instance: Instance, reason: str) -> tuple[Instance, list[Action]]:
    return replace(instance, status="done", waiting_until=None, waiting_for=None,
                   done_reason=reason), [Done(reason)]


def _run(journey: Journey, instance: Instance, target: str, now: datetime, facts: Facts
         ) -> tuple[Instance, list[Action]]:
    """Go through steps that take no time until a wait or the end."""
    actions: list[Action] = []
    # Validation refuses loops without a wait; this bound keeps a bug from spinning anyway.
    for _ in range(len(journey.steps) + 1):
        if target == END:
            done, more = _finish(instance, COMPLETED)
            return done, actions + more
        current = journey.get(target)
        instance = replace(instance, status="active", step_id=target,
                           path=(*instance.path, target))
        match current:
            case PushStep():
                message_id, variant = _message(journey, instance, current, facts)
                if variant is not None and instance.variant(current.id) is None:
                    instance = replace(instance,
                                       variants=(*instance.variants, (current.id, variant)))
                actions.append(SendPush(current.id, message_id, variant))
                target = current.next or journey.following(current.id)
            case WaitStep():
                until = _wait_until(current, now, facts)
                if until <= now:
                    target = current.next or journey.following(current.id)
                    continue
                instance = replace(instance, status="waiting", waiting_until=until)
                actions.append(Schedule(until, current.id))
                return instance, actions
            case WaitForInteractionStep():
                if current.step is not None and current.interaction is not None:
                    if facts.interacted(current.step, current.interaction):
                        target = current.yes
                        continue
                    awaiting = Awaiting("interaction", current.step, current.interaction)
                else:
                    assert current.trigger is not None
                    awaiting = Awaiting("trigger", current.trigger)
                deadline = now + current.within
                instance = replace(instance, status="waiting", waiting_until=deadline,
                                   waiting_for=awaiting)
                wake = deadline + (LATE_INTERACTION_GRACE if awaiting.kind == "interaction"
                                   else timedelta(0))
                actions += [Await(awaiting.kind, awaiting.key, deadline),
                            Schedule(wake, current.id)]
                return instance, actions
            case BranchStep():
                target = next((b.next for b in current.branches if facts.matches(b.when)),
                              current.otherwise)
            case SplitStep():
                draw = bucket(instance.journey_id, current.id, instance.person_id)
                edge = 0.0
                target = current.shares[-1].next
                for share in current.shares:
                    edge += share.share * 100
                    if draw < edge:
                        target = share.next
                        break
            case EndStep():
                done, more = _finish(instance, COMPLETED)
                return done, actions + more
    done, more = _finish(instance, LOOP_GUARD)
    return done, actions + more


def _message(journey: Journey, instance: Instance, push: PushStep, facts: Facts
             ) -> tuple[str, Variant | None]:
    if push.ab is None:
        assert push.message_id is not None
        return push.message_id, None
    variant = facts.winner(push.id) or instance.variant(push.id) or ab_variant(
        instance.journey_id, push.id, instance.person_id, push.ab.share_a)
    return (push.ab.a if variant == "a" else push.ab.b), variant


def _wait_until(wait: WaitStep, now: datetime, facts: Facts) -> datetime:
    if wait.duration is not None:
        return now + wait.duration
    if wait.until is not None:
        return min(wait.until, now + MAX_WAIT)
    assert wait.until_local_time is not None
    return local_time_after(now, wait.until_local_time.hour, wait.until_local_time.minute,
                            facts.time_zone())
