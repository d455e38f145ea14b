"""The journey engine with a frozen clock: every step type, the issue's example person by
person, stale and repeated events, and the per-step tally."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clarion.domain.journeys.document import Journey
from clarion.domain.journeys.engine import (
    COMPLETED,
    LATE_INTERACTION_GRACE,
    Await,
    Done,
    Entered,
    Exit,
    Instance,
    Interaction,
    Schedule,
    SendPush,
    TimerFired,
    TriggerFired,
    Variant,
    ab_variant,
    local_time_after,
    step,
)
from clarion.domain.journeys.tally import Tally
from clarion.domain.journeys.validation import parse
from tests.unit.test_journey_document import doc

pytestmark = pytest.mark.unit

T0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class FakeFacts:
    true: set[str] = field(default_factory=set)
    zone: str | None = None
    done: set[tuple[str, str]] = field(default_factory=set)
    winners: dict[str, Variant] = field(default_factory=dict)

    def matches(self, condition: str) -> bool:
        return condition in self.true

    def time_zone(self) -> str | None:
        return self.zone

    def interacted(self, step_id: str, interaction: str) -> bool:
        return (step_id, interaction) in self.done

    def winner(self, step_id: str) -> Variant | None:
        return self.winners.get(step_id)


def new(person: str = "p1") -> Instance:
    return Instance(journey_id="j1", version=1, person_id=person)


def journey(**changes: Any) -> Journey:
    return parse(doc(**changes))


GOLD = FakeFacts(true={"tier eq 'gold'"})


def test_example_gold_person_who_opens_gets_perks() -> None:
    j = journey()
    inst, actions = step(j, new(), Entered(), T0, GOLD)
    deadline = T0 + timedelta(seconds=8)
    assert actions == [SendPush("hello", "m-hello"), Await("interaction", "hello", deadline),
                       Schedule(deadline + LATE_INTERACTION_GRACE, "opened")]
    assert inst.status == "waiting"
    assert inst.step_id == "opened"
    inst, actions = step(j, inst, Interaction("hello", "opened"), T0 + timedelta(seconds=3),
                         GOLD)
    assert actions == [SendPush("perks", "m-perks"), Done(COMPLETED)]
    assert inst.path == ("hello", "opened", "tier", "perks")
    # The deadline's timer still fires later: stale, nothing happens.
    assert step(j, inst, TimerFired("opened"), deadline, GOLD) == (inst, [])


def test_example_silver_person_who_opens_gets_nothing_more() -> None:
    j = journey()
    inst, _ = step(j, new(), Entered(), T0, FakeFacts())
    inst, actions = step(j, inst, Interaction("hello", "clicked"), T0, FakeFacts())
    assert actions == [Done(COMPLETED)]
    assert inst.path == ("hello", "opened", "tier")


def test_example_person_who_does_not_open_gets_the_nudge_at_the_deadline() -> None:
    j = journey()
    inst, _ = step(j, new(), Entered(), T0, GOLD)
    wake = T0 + timedelta(seconds=8) + LATE_INTERACTION_GRACE
    early = step(j, inst, TimerFired("opened"), T0 + timedelta(seconds=7), GOLD)
    assert early == (inst, [Schedule(wake, "opened")])
    inst, actions = step(j, inst, TimerFired("opened"), wake, GOLD)
    assert actions == [SendPush("nudge", "m-nudge"), Done(COMPLETED)]
    assert inst.path == ("hello", "opened", "nudge")
    # An open after the deadline changes nothing.
    assert step(j, inst, Interaction("hello", "opened"), T0 + timedelta(seconds=9), GOLD)[1] == []


def test_an_open_made_just_before_the_deadline_that_arrives_after_it_still_counts() -> None:
    """The report of an open made at 7.9 s reaches the engine at 10 s (accepted, recorded,
    published): still a yes. One made at 9 s, after the 8 s deadline, is not."""
    j = journey()
    waiting, _ = step(j, new(), Entered(), T0, GOLD)
    late_news = T0 + timedelta(seconds=10)
    inst, actions = step(j, waiting, Interaction("hello", "opened",
                                                 T0 + timedelta(milliseconds=7_900)),
                         late_news, GOLD)
    assert actions == [SendPush("perks", "m-perks"), Done(COMPLETED)]
    inst, actions = step(j, waiting, Interaction("hello", "opened", T0 + timedelta(seconds=9)),
                         late_news, GOLD)
    assert (inst, actions) == (waiting, [])
    # Without its time, an interaction happened when it arrives: after the deadline, late.
    assert step(j, waiting, Interaction("hello", "opened"), late_news, GOLD) == (waiting, [])


def test_the_deadline_timer_answers_yes_when_the_open_is_recorded_but_its_event_is_not_in(
) -> None:
    """The timer fires while the open's event is still on its way: the recorded interactions
    (facts) decide, so the person is not sent the nudge."""
    j = journey()
    waiting, _ = step(j, new(), Entered(), T0, GOLD)
    recorded = FakeFacts(true={"tier eq 'gold'"}, done={("hello", "opened")})
    wake = T0 + timedelta(seconds=8) + LATE_INTERACTION_GRACE
    inst, actions = step(j, waiting, TimerFired("opened"), wake, recorded)
    assert actions == [SendPush("perks", "m-perks"), Done(COMPLETED)]
    assert inst.path == ("hello", "opened", "tier", "perks")


def test_an_open_recorded_before_the_wait_answers_yes_at_once() -> None:
    j = journey()
    facts = FakeFacts(true={"tier eq 'gold'"}, done={("hello", "opened")})
    inst, actions = step(j, new(), Entered(), T0, facts)
    assert actions == [SendPush("hello", "m-hello"), SendPush("perks", "m-perks"),
                       Done(COMPLETED)]
    assert inst.done


def test_entered_twice_and_events_before_entry_do_nothing() -> None:
    j = journey()
    assert step(j, new(), TimerFired("opened"), T0, GOLD) == (new(), [])
    assert step(j, new(), TriggerFired("x"), T0, GOLD) == (new(), [])
    inst, _ = step(j, new(), Entered(), T0, GOLD)
    assert step(j, inst, Entered(), T0, GOLD) == (inst, [])


def test_waits() -> None:
    j = journey(steps=[{"id": "d", "type": "wait", "duration": "PT1H"},
                       {"id": "u", "type": "wait", "until": "2027-03-02T00:00:00Z"},
                       {"id": "past", "type": "wait", "until": "2020-01-01T00:00:00Z"},
                       {"id": "l", "type": "wait", "until_local_time": "09:30"},
                       {"id": "p", "type": "push", "message_id": "m"}])
    facts = FakeFacts(zone="Europe/Paris")
    inst, actions = step(j, new(), Entered(), T0, facts)
    assert actions == [Schedule(T0 + timedelta(hours=1), "d")]
    now = T0 + timedelta(hours=1)
    inst, actions = step(j, inst, TimerFired("d"), now, facts)
    until = datetime(2027, 3, 2, tzinfo=UTC)
    assert actions == [Schedule(until, "u")]
    inst, actions = step(j, inst, TimerFired("u"), until, facts)
    # "past" is over already: straight through; 09:30 in Paris (UTC+1 in March) is 08:30 UTC.
    local = datetime(2027, 3, 2, 8, 30, tzinfo=UTC)
    assert actions == [Schedule(local, "l")]
    assert inst.path == ("d", "u", "past", "l")
    inst, actions = step(j, inst, TimerFired("l"), local, facts)
    assert actions == [SendPush("p", "m"), Done(COMPLETED)]


def test_local_time_is_the_next_one_in_the_zone() -> None:
    assert local_time_after(T0, 9, 0, "America/New_York") == datetime(2027, 3, 1, 14, 0,
                                                                      tzinfo=UTC)
    assert local_time_after(T0, 13, 0, None) == datetime(2027, 3, 1, 13, 0, tzinfo=UTC)
    assert local_time_after(T0, 12, 0, "Not/AZone") == datetime(2027, 3, 2, 12, 0, tzinfo=UTC)


def test_wait_for_a_trigger_with_a_condition() -> None:
    j = journey(steps=[{"id": "w", "type": "wait_for_interaction", "trigger": "bought",
                        "when": "total gt 10", "within": "P1D", "yes": "thanks", "no": "end"},
                       {"id": "thanks", "type": "push", "message_id": "m"}])
    inst, actions = step(j, new(), Entered(), T0, FakeFacts())
    assert actions[0] == Await("trigger", "bought", T0 + timedelta(days=1))
    assert step(j, inst, TriggerFired("bought"), T0, FakeFacts()) == (inst, [])
    assert step(j, inst, TriggerFired("other"), T0, FakeFacts(true={"total gt 10"}))[1] == []
    inst, actions = step(j, inst, TriggerFired("bought"), T0, FakeFacts(true={"total gt 10"}))
    assert actions == [SendPush("thanks", "m"), Done(COMPLETED)]


def test_exit_triggers_goal_and_external_exit() -> None:
    j = journey(exit_triggers=["unsubscribed"], goal={"trigger": "bought", "target_share": 10})
    inst, _ = step(j, new(), Entered(), T0, GOLD)
    inst, actions = step(j, inst, TriggerFired("bought"), T0, GOLD)
    assert actions == []
    assert inst.goal_met
    inst, actions = step(j, inst, TriggerFired("unsubscribed"), T0, GOLD)
    assert actions == [Done("exit_trigger:unsubscribed")]
    assert inst.step_id == "opened"
    assert step(j, inst, Exit("journey_stopped"), T0, GOLD) == (inst, [])

    stopped, actions = step(j, step(j, new(), Entered(), T0, GOLD)[0], Exit("journey_stopped"),
                            T0, GOLD)
    assert actions == [Done("journey_stopped")]
    assert stopped.done_reason == "journey_stopped"


def test_ab_tests_are_stable_per_person_and_follow_the_winner() -> None:
    j = journey(steps=[{"id": "ab", "type": "push",
                        "ab": {"a": "ma", "b": "mb", "share_a": 30, "ends_at":
                               "2027-04-01T00:00:00Z"}}])
    seen = {}
    for n in range(2000):
        inst, actions = step(j, new(f"p{n}"), Entered(), T0, FakeFacts())
        push = actions[0]
        assert isinstance(push, SendPush)
        assert push.message_id == ("ma" if push.variant == "a" else "mb")
        assert inst.variants == (("ab", push.variant),)
        seen[n] = push.variant
        assert ab_variant("j1", "ab", f"p{n}", 30) == push.variant
    share = sum(v == "a" for v in seen.values()) / len(seen)
    assert 0.26 < share < 0.34
    inst, actions = step(j, new("p1"), Entered(), T0, FakeFacts(winners={"ab": "b"}))
    assert actions[0] == SendPush("ab", "mb", "b")


def test_split_is_stable_and_near_its_shares() -> None:
    j = journey(steps=[{"id": "s", "type": "split", "shares": [{"share": 20, "next": "x"},
                                                                {"share": 80, "next": "y"}]},
                       {"id": "x", "type": "push", "message_id": "mx", "next": "end"},
                       {"id": "y", "type": "push", "message_id": "my"}])
    xs = 0
    for n in range(2000):
        inst, actions = step(j, new(f"p{n}"), Entered(), T0, FakeFacts())
        again, _ = step(j, new(f"p{n}"), Entered(), T0, FakeFacts())
        assert inst == again
        xs += actions[0] == SendPush("x", "mx")
    assert 0.16 < xs / 2000 < 0.24


def test_branch_takes_the_first_matching_condition() -> None:
    j = journey(steps=[{"id": "b", "type": "branch", "branches": [
        {"when": "c1", "next": "one"}, {"when": "c2", "next": "two"}], "otherwise": "end"},
        {"id": "one", "type": "end"}, {"id": "two", "type": "end"}])
    assert step(j, new(), Entered(), T0, FakeFacts(true={"c1", "c2"}))[0].path == ("b", "one")
    assert step(j, new(), Entered(), T0, FakeFacts(true={"c2"}))[0].path == ("b", "two")
    assert step(j, new(), Entered(), T0, FakeFacts())[0].path == ("b",)


def test_the_tally_adds_up_for_the_example() -> None:
    j = journey()
    tally = Tally([(s.id, type(s).__name__) for s in j.steps])
    gold_open, _ = step(j, step(j, new("a"), Entered(), T0, GOLD)[0],
                        Interaction("hello", "opened"), T0, GOLD)
    no_open, _ = step(j, step(j, new("b"), Entered(), T0, GOLD)[0], TimerFired("opened"),
                      T0 + timedelta(seconds=8) + LATE_INTERACTION_GRACE, GOLD)
    waiting, _ = step(j, new("c"), Entered(), T0, GOLD)
    left, _ = step(j, waiting, Exit("journey_stopped"), T0, GOLD)
    for inst in (gold_open, no_open, waiting, left):
        tally.add(inst.path, inst.status, inst.done_reason, inst.variants, inst.goal_met)
    rows = {r.id: r.as_dict() for r in tally.steps()}
    assert list(rows) == ["hello", "opened", "nudge", "tier", "perks"]
    assert rows["hello"] == {"id": "hello", "type": "PushStep", "inflow": 4, "processing": 0,
                             "processed": 4, "exit": 0, "exit_reasons": {}}
    assert rows["opened"]["inflow"] == 4
    assert rows["opened"]["processing"] == 1
    assert rows["opened"]["processed"] == 2
    assert rows["opened"]["exit_reasons"] == {"journey_stopped": 1}
    assert rows["nudge"]["processed"] == rows["perks"]["processed"] == 1
    for r in tally.steps():
        assert r.inflow == r.processing + r.processed + r.exit
