"""Properties of ``step()`` over generated journeys and event sequences: nobody is lost or
counted twice, every wait ends, every path reaches the end, a push is asked for once per
visit, and the per-step figures add up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarion.domain.journeys.document import END, Journey, PushStep
from clarion.domain.journeys.engine import (
    COMPLETED,
    LATE_INTERACTION_GRACE,
    Action,
    Done,
    Entered,
    Event,
    Exit,
    Instance,
    Interaction,
    Schedule,
    SendPush,
    TimerFired,
    TriggerFired,
    step,
)
from clarion.domain.journeys.tally import Tally
from clarion.domain.journeys.validation import parse, validate
from tests.unit.test_journey_engine import FakeFacts

pytestmark = pytest.mark.unit

T0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
CONDITIONS = ["c0", "c1", "c2"]


@st.composite
def journeys(draw: st.DrawFn) -> Journey:
    """Valid journeys whose targets point forward (or to ``end``); the first step is a push,
    so a wait on its interaction is always allowed."""
    n = draw(st.integers(2, 8))
    ids = [f"s{i}" for i in range(n)]

    def forward(i: int) -> str:
        return draw(st.sampled_from([*ids[i + 1:], END]))

    steps: list[dict[str, Any]] = [{"id": "s0", "type": "push", "message_id": "m0"}]
    for i in range(1, n):
        kind = draw(st.sampled_from(["push", "ab", "wait", "wait_local", "wfi", "wfi_trigger",
                                     "branch", "split", "end"]))
        sid = ids[i]
        if kind == "push":
            steps.append({"id": sid, "type": "push", "message_id": f"m{i}"})
        elif kind == "ab":
            steps.append({"id": sid, "type": "push", "ab": {
                "a": f"m{i}a", "b": f"m{i}b", "share_a": draw(st.integers(10, 90)),
                "significance": 0.95}})
        elif kind == "wait":
            steps.append({"id": sid, "type": "wait",
                          "duration": f"PT{draw(st.integers(1, 7200))}S"})
        elif kind == "wait_local":
            steps.append({"id": sid, "type": "wait", "until_local_time":
                          f"{draw(st.integers(0, 23)):02d}:{draw(st.integers(0, 59)):02d}"})
        elif kind in ("wfi", "wfi_trigger"):
            wait: dict[str, Any] = {"id": sid, "type": "wait_for_interaction",
                                    "within": f"PT{draw(st.integers(1, 3600))}S",
                                    "yes": forward(i), "no": forward(i)}
            if kind == "wfi":
                wait |= {"step": "s0", "interaction": draw(st.sampled_from(["opened",
                                                                            "clicked"]))}
            else:
                wait |= {"trigger": "t"}
            steps.append(wait)
        elif kind == "branch":
            steps.append({"id": sid, "type": "branch", "branches": [
                {"when": c, "next": forward(i)} for c in draw(
                    st.lists(st.sampled_from(CONDITIONS), min_size=1, max_size=3))],
                "otherwise": forward(i)})
        elif kind == "split":
            first = draw(st.integers(0, 100))
            steps.append({"id": sid, "type": "split", "shares": [
                {"share": first, "next": forward(i)}, {"share": 100 - first,
                                                       "next": forward(i)}]})
        else:
            steps.append({"id": sid, "type": "end"})
    for i, s in enumerate(steps):
        if s["type"] in ("push", "wait") and draw(st.booleans()):
            s["next"] = forward(i)
    # Unreachable steps are refused: point every step nobody targets from its predecessor.
    document = {"name": "gen", "app_id": "a", "steps": steps,
                "entry": {"type": "trigger", "trigger": "go"}, "exit_triggers": ["stop"]}
    for _ in range(n):
        problems = [p for p in _problems(document) if p[1] == "id"]
        if not problems:
            break
        target = problems[0][0]
        index = ids.index(target)
        steps[index - 1].pop("next", None)
        if steps[index - 1]["type"] == "end":
            steps[index - 1] = {"id": ids[index - 1], "type": "push",
                                "message_id": f"m{index - 1}"}
        elif steps[index - 1]["type"] not in ("push", "wait"):
            steps[index - 1] = {"id": ids[index - 1], "type": "push",
                                "message_id": f"m{index - 1}", "next": target}
        else:
            steps[index - 1]["next"] = target
    return parse(document)


def _problems(document: dict[str, Any]) -> list[tuple[str | None, str]]:
    return [(p.step, p.field) for p in validate(document)]


def events() -> st.SearchStrategy[Event]:
    return st.one_of(
        st.builds(TimerFired, st.sampled_from([f"s{i}" for i in range(8)])),
        st.builds(Interaction, st.sampled_from(["s0", "s1"]),
                  st.sampled_from(["opened", "clicked"])),
        st.builds(TriggerFired, st.sampled_from(["t", "stop", "other"])),
        st.just(Exit("person_deleted")),
        st.just(Entered()))


def _check(journey: Journey, inst: Instance, actions: list[Action]) -> None:
    dones = [a for a in actions if isinstance(a, Done)]
    assert len(dones) <= 1
    if dones:
        assert inst.done
        assert inst.done_reason == dones[0].reason
        assert actions[-1] == dones[0]
    if inst.status == "waiting":
        assert inst.waiting_until is not None
        assert inst.step_id is not None


@settings(max_examples=150, deadline=None)
@given(journeys(), st.lists(events(), max_size=12), st.lists(st.sampled_from(CONDITIONS)),
       st.integers(1, 40))
def test_nobody_lost_or_duplicated_and_the_figures_add_up(
        journey: Journey, script: list[Event], true: list[str], people: int) -> None:
    facts = FakeFacts(true=set(true), zone="Asia/Kolkata")
    tally = Tally([(s.id, type(s).__name__) for s in journey.steps])
    pushes_asked = 0
    for n in range(people):
        now = T0
        inst = Instance("j", 1, f"p{n}")
        inst, actions = step(journey, inst, Entered(), now, facts)
        done_seen = sum(isinstance(a, Done) for a in actions)
        pushes = [a for a in actions if isinstance(a, SendPush)]
        _check(journey, inst, actions)
        for event in script[n % max(1, len(script)):] + script:
            now += timedelta(seconds=30)
            before = inst
            inst, actions = step(journey, inst, event, now, facts)
            _check(journey, inst, actions)
            if before.done:
                assert (inst, actions) == (before, [])
            done_seen += sum(isinstance(a, Done) for a in actions)
            pushes += [a for a in actions if isinstance(a, SendPush)]
        assert done_seen == int(inst.done)
        # One push asked for per visit of a push step, never more.
        assert len(pushes) == sum(isinstance(journey.get(s), PushStep) for s in inst.path)
        pushes_asked += len(pushes)
        tally.add(inst.path, inst.status, inst.done_reason, inst.variants, inst.goal_met)
    assert tally.people == people
    for row in tally.steps():
        assert row.inflow == row.processing + row.processed + row.exit
    first = tally.steps()[0]
    assert first.inflow == people


@settings(max_examples=150, deadline=None)
@given(journeys(), st.lists(st.sampled_from(CONDITIONS)), st.text(min_size=1, max_size=5))
def test_every_wait_ends_and_every_path_reaches_the_end(
        journey: Journey, true: list[str], person: str) -> None:
    facts = FakeFacts(true=set(true), zone="Pacific/Auckland")
    now = T0
    inst, actions = step(journey, Instance("j", 1, person), Entered(), now, facts)
    for _ in range(len(journey.steps) + 1):
        if inst.done:
            break
        assert inst.status == "waiting"
        assert inst.waiting_until is not None
        assert inst.waiting_until - now <= timedelta(days=90)
        # The timer the engine asked for: at the deadline (an interaction's: a grace later)
        wake = [a.at for a in actions if isinstance(a, Schedule)]
        assert len(wake) == 1 and inst.waiting_until <= wake[0] <= (
            inst.waiting_until + LATE_INTERACTION_GRACE)
        now = wake[0]
        moved, actions = step(journey, inst, TimerFired(inst.step_id or ""), now, facts)
        assert moved != inst  # the wait ended
        inst = moved
    assert inst.done
    assert inst.done_reason == COMPLETED
    assert len(inst.path) == len(set(inst.path))  # forward-only journeys never revisit
