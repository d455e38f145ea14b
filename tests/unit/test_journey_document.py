"""The journey document: the issue's example is valid, and every problem is named by step
id and field, all of them at once."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from clarion.domain.journeys.document import (
    END,
    BranchStep,
    PushStep,
    SegmentEntry,
    WaitForInteractionStep,
)
from clarion.domain.journeys.durations import format_duration, parse_duration
from clarion.domain.journeys.reading import read
from clarion.domain.journeys.validation import JourneyInvalid, parse, validate

pytestmark = pytest.mark.unit

EXAMPLE: dict[str, Any] = {
    "name": "Welcome series", "app_id": "app-1",
    "entry": {"type": "segment", "segment_id": "seg-1", "schedule": {"kind": "once"}},
    "steps": [
        {"id": "hello", "type": "push", "message_id": "m-hello"},
        {"id": "opened", "type": "wait_for_interaction", "step": "hello",
         "interaction": "opened", "within": "PT8S", "yes": "tier", "no": "nudge"},
        {"id": "nudge", "type": "push", "message_id": "m-nudge", "next": "end"},
        {"id": "tier", "type": "branch",
         "branches": [{"when": "tier eq 'gold'", "next": "perks"}], "otherwise": "end"},
        {"id": "perks", "type": "push", "message_id": "m-perks"}],
    "reentry": "never"}


def doc(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(EXAMPLE)
    out.update(changes)
    return out


def problems_of(document: Any) -> set[tuple[str | None, str]]:
    return {(p.step, p.field) for p in validate(document)}


def test_the_issue_example_is_valid() -> None:
    journey = parse(EXAMPLE)
    assert isinstance(journey.entry, SegmentEntry)
    assert journey.entry.schedule.kind == "once"
    assert [s.id for s in journey.steps] == ["hello", "opened", "nudge", "tier", "perks"]
    opened = journey.get("opened")
    assert isinstance(opened, WaitForInteractionStep)
    assert opened.within == timedelta(seconds=8)
    assert journey.following("perks") == END
    assert isinstance(journey.get("tier"), BranchStep)
    assert journey.reentry == "never"


def test_every_step_type_and_entry_kind_reads() -> None:
    document = doc(
        entry={"type": "trigger", "trigger": "cart_abandoned", "when": "cart_total gt 50"},
        exclude_segment_ids=["seg-x"], entry_limit_per_hour=500,
        exit_triggers=["purchased", {"trigger": "unsubscribed"}],
        goal={"trigger": "purchased", "target_share": 20}, reentry="after_exit",
        steps=[
            {"id": "ab", "type": "push", "ab": {"a": "m1", "b": "m2", "share_a": 30,
                                                "metric": "clicked", "significance": 0.95}},
            {"id": "pause", "type": "wait", "duration": "P1D"},
            {"id": "morning", "type": "wait", "until_local_time": "09:30"},
            {"id": "bought", "type": "wait_for_interaction", "trigger": "purchased",
             "when": "total gt 10", "within": "P7D", "yes": "done", "no": "coin"},
            {"id": "coin", "type": "split", "shares": [{"share": 50, "next": "later"},
                                                         {"share": 50, "next": "done"}]},
            {"id": "later", "type": "wait", "until": "2027-01-15T09:00:00Z", "next": "done"},
            {"id": "done", "type": "end"}])
    journey, problems = read(document)
    assert problems == []
    assert journey is not None
    assert validate(document) == []
    ab = journey.get("ab")
    assert isinstance(ab, PushStep)
    assert ab.ab is not None
    assert ab.ab.share_a == 30


def test_problems_name_the_step_and_the_field_all_at_once() -> None:
    document = doc(steps=[
        {"id": "hello", "type": "push"},
        {"id": "opened", "type": "wait_for_interaction", "step": "hello",
         "interaction": "seen", "within": "P100D", "yes": "x", "no": "end"},
        {"id": "ab", "type": "push", "ab": {"a": "m1", "b": "m2", "share_a": 95}},
        {"id": "w", "type": "wait", "duration": "P1M"},
        {"id": "s", "type": "split", "shares": [{"share": 50, "next": "end"},
                                                 {"share": 40, "next": "end"}]},
        {"id": "hello", "type": "end"},
        {"id": "b", "type": "teleport"}])
    found = problems_of(document)
    assert ("hello", "message_id") in found
    assert ("opened", "interaction") in found
    assert ("opened", "within") in found
    assert ("ab", "ab.share_a") in found
    assert ("w", "duration") in found
    assert ("s", "shares") in found
    assert (None, "steps[5].id") in found
    assert ("b", "type") in found


def test_graph_problems() -> None:
    unknown = doc()
    unknown["steps"][3]["branches"][0]["next"] = "nowhere"
    assert problems_of(unknown) == {("tier", "branches[0].next")}

    unreachable = doc()
    unreachable["steps"][0]["next"] = "end"
    assert ("opened", "id") in problems_of(unreachable)

    loop = doc(steps=[{"id": "a", "type": "push", "message_id": "m"},
                      {"id": "b", "type": "branch", "branches": [{"when": "x eq 1",
                                                                  "next": "a"}],
                       "otherwise": "end"}])
    assert problems_of(loop) == {("a", "next")}

    waited_loop = doc(steps=[{"id": "a", "type": "push", "message_id": "m"},
                             {"id": "w", "type": "wait", "duration": "P1D"},
                             {"id": "b", "type": "branch",
                              "branches": [{"when": "x eq 1", "next": "a"}],
                              "otherwise": "end"}])
    assert validate(waited_loop) == []


def test_a_wait_on_a_push_step_that_may_not_have_run_is_refused() -> None:
    later = doc(steps=[
        {"id": "opened", "type": "wait_for_interaction", "step": "hello",
         "interaction": "opened", "within": "PT8S", "yes": "end", "no": "end"},
        {"id": "hello", "type": "push", "message_id": "m"}])
    problems = problems_of(later)
    assert ("opened", "step") in problems

    sideways = doc(steps=[
        {"id": "coin", "type": "split", "shares": [{"share": 50, "next": "hello"},
                                                    {"share": 50, "next": "opened"}]},
        {"id": "hello", "type": "push", "message_id": "m"},
        {"id": "opened", "type": "wait_for_interaction", "step": "hello",
         "interaction": "opened", "within": "PT8S", "yes": "end", "no": "end"}])
    assert problems_of(sideways) == {("opened", "step")}

    not_push = doc(steps=[
        {"id": "w", "type": "wait", "duration": "PT1M"},
        {"id": "opened", "type": "wait_for_interaction", "step": "w",
         "interaction": "opened", "within": "PT8S", "yes": "end", "no": "end"}])
    assert problems_of(not_push) == {("opened", "step")}


def test_the_condition_parser_is_injected() -> None:
    def strict(text: str) -> object:
        if "eq" not in text:
            raise ValueError("expected a comparison")
        return text

    bad = doc()
    bad["steps"][3]["branches"][0]["when"] = "tier is gold"
    assert validate(bad) == []
    problems = validate(bad, strict)
    assert [(p.step, p.field) for p in problems] == [("tier", "branches[0].when")]
    assert "expected a comparison" in problems[0].message


def test_journey_invalid_carries_every_problem() -> None:
    with pytest.raises(JourneyInvalid) as caught:
        parse({"name": "", "steps": []})
    errors = caught.value.as_dict()["errors"]
    assert isinstance(errors, list)
    fields = {p["field"] for p in errors}
    assert {"name", "app_id", "entry", "steps"} <= fields


@pytest.mark.parametrize(("text", "seconds"), [("PT8S", 8), ("PT1H30M", 5400), ("P2D", 172800),
                                               ("P1W", 604800), ("P1DT1S", 86401)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds
    assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)


@pytest.mark.parametrize("text", ["P1M", "P1Y", "P", "PT", "8s", "P1DT", ""])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_duration(text)


def test_graph_problems_come_with_the_other_fields_problems() -> None:
    bad = doc(name="", reentry="sometimes")
    bad["steps"][3]["otherwise"] = "nowhere"
    assert problems_of(bad) == {(None, "name"), (None, "reentry"), ("tier", "otherwise")}
