"""The structural reading of a journey document's JSON form (``read``): the journey's own
fields here (entry and its schedule, exclusions, entry limit, exit triggers, goal, re-entry,
compliance), its steps in ``step_reading``. Graph rules (targets, cycles, reachability) are in
``validation``.

Reading never stops at the first problem: every problem found is collected as a ``Problem``
naming the step id (when inside a step) and the field path, so a person fixes them all at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta

from clarion.domain.compliance.quiet_times import profile_from_document
from clarion.domain.journeys.document import (
    MAX_NAME_LENGTH,
    ConditionParser,
    Entry,
    Goal,
    InteractionEntry,
    Journey,
    JourneyCompliance,
    Problem,
    Schedule,
    SegmentEntry,
    TriggerEntry,
    TriggerRef,
    any_condition,
)
from clarion.domain.journeys.fields import FieldReader
from clarion.domain.journeys.step_reading import read_steps
from clarion.errors import InvalidInput

GraphCheck = Callable[[Journey], list[Problem]]


def read(document: object, parse_condition: ConditionParser = any_condition,
         graph: GraphCheck | None = None) -> tuple[Journey | None, list[Problem]]:
    """The journey and every structural problem; the journey is None when any problem was
    found (a partial journey is never returned to run). With ``graph``, the steps' graph
    problems are added when the other fields have problems but the steps have none."""
    r = FieldReader(parse_condition)
    doc = r.mapping(document, "document")
    if doc is None:
        return None, r.problems
    r.unknown(doc, {"name", "app_id", "entry", "steps", "exclude_segment_ids",
                    "entry_limit_per_hour", "exit_triggers", "goal", "reentry", "description",
                    "compliance"}, "")
    name = r.text(doc, "name", "name", max_length=MAX_NAME_LENGTH)
    app_id = r.text(doc, "app_id", "app_id")
    entry = _entry(r, doc.get("entry"))
    exclusions = _id_list(r, doc.get("exclude_segment_ids", []), "exclude_segment_ids")
    limit = r.number(doc, "entry_limit_per_hour", "entry_limit_per_hour", 1, 10_000_000,
                     required=False)
    if limit is not None and limit != int(limit):
        r.bad("entry_limit_per_hour", "must be a whole number of people per hour")
    exits = _exit_triggers(r, doc.get("exit_triggers", []))
    goal = _goal(r, doc.get("goal"))
    reentry = r.choice(doc, "reentry", "reentry", ("never", "after_exit", "always"), "never")
    compliance = _compliance(r, doc.get("compliance"))
    before = len(r.problems)
    steps = read_steps(r, doc.get("steps"))
    if r.problems:
        if graph is not None and steps is not None and len(r.problems) == before:
            # The steps themselves are sound: check their graph too, so that one answer
            # lists every problem (the other fields only stand in here).
            sketch = Journey(name="", app_id="", entry=TriggerEntry(""), steps=tuple(steps))
            r.problems.extend(graph(sketch))
        return None, r.problems
    assert name is not None
    assert app_id is not None
    assert entry is not None
    assert steps is not None
    assert reentry is not None
    return Journey(name=name, app_id=app_id, entry=entry, steps=tuple(steps),
                   exclude_segment_ids=tuple(exclusions),
                   entry_limit_per_hour=None if limit is None else int(limit),
                   exit_triggers=tuple(exits), goal=goal,
                   reentry=reentry, compliance=compliance), []  # type: ignore[arg-type]


def _compliance(r: FieldReader, value: object) -> JourneyCompliance:
    if value is None:
        return JourneyCompliance()
    doc = r.mapping(value, "compliance")
    if doc is None:
        return JourneyCompliance()
    r.unknown(doc, {"quiet_times", "frequency_cap"}, "compliance.")
    cap = r.choice(doc, "frequency_cap", "compliance.frequency_cap", ("apply", "exclude"),
                   "apply")
    quiet = doc.get("quiet_times")
    if quiet is not None:
        try:
            profile_from_document(quiet if isinstance(quiet, Mapping) else {})
        except InvalidInput as exc:
            r.bad(f"compliance.quiet_times.{exc.field}" if exc.field
                  else "compliance.quiet_times", exc.message)
            quiet = None
        if not isinstance(quiet, Mapping):
            r.bad("compliance.quiet_times", "must be a quiet-time profile (docs/compliance.md)")
            quiet = None
    return JourneyCompliance(quiet, cap or "apply")  # type: ignore[arg-type]


def _id_list(r: FieldReader, value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        r.bad(where, "must be a list of ids")
        return []
    return list(value)


def _entry(r: FieldReader, value: object) -> Entry | None:
    if value is None:
        r.bad("entry", "is required: {\"type\": \"segment\" | \"trigger\" | \"interaction\", ...}")
        return None
    doc = r.mapping(value, "entry")
    if doc is None:
        return None
    kind = r.choice(doc, "type", "entry.type", ("segment", "trigger", "interaction"))
    if kind == "segment":
        r.unknown(doc, {"type", "segment_id", "schedule"}, "entry.")
        segment_id = r.text(doc, "segment_id", "entry.segment_id")
        schedule = _schedule(r, doc.get("schedule", {"kind": "once"}))
        return None if segment_id is None or schedule is None else SegmentEntry(segment_id,
                                                                                 schedule)
    if kind == "trigger":
        r.unknown(doc, {"type", "trigger", "when"}, "entry.")
        trigger = r.text(doc, "trigger", "entry.trigger")
        when = r.condition(doc, "when", "entry.when")
        return None if trigger is None else TriggerEntry(trigger, when)
    if kind == "interaction":
        r.unknown(doc, {"type", "interaction", "message_id", "journey_id", "step"}, "entry.")
        what = r.choice(doc, "interaction", "entry.interaction",
                        ("sent", "not_sent", "opened", "clicked"))
        message_id = r.text(doc, "message_id", "entry.message_id", required=False)
        journey_id = r.text(doc, "journey_id", "entry.journey_id", required=False)
        step = r.text(doc, "step", "entry.step", required=False)
        if (message_id is None) == (journey_id is None):
            r.bad("entry.message_id", "give either message_id, or journey_id and step")
        elif journey_id is not None and step is None:
            r.bad("entry.step", "is required with journey_id: the push step's id")
        if what is None:
            return None
        return InteractionEntry(what, message_id, journey_id, step)  # type: ignore[arg-type]
    return None


def _schedule(r: FieldReader, value: object) -> Schedule | None:
    doc = r.mapping(value, "entry.schedule")
    if doc is None:
        return None
    r.unknown(doc, {"kind", "every"}, "entry.schedule.")
    kind = r.choice(doc, "kind", "entry.schedule.kind", ("once", "once_then_new", "repeat"))
    every = None
    if kind == "repeat":
        every = r.wait_length(doc, "every", "entry.schedule.every")
        if every is not None and every < timedelta(hours=1):
            r.bad("entry.schedule.every", "must be at least one hour (PT1H)")
    elif "every" in doc:
        r.bad("entry.schedule.every", "only a 'repeat' schedule has 'every'")
    return None if kind is None else Schedule(kind, every)  # type: ignore[arg-type]


def _exit_triggers(r: FieldReader, value: object) -> list[TriggerRef]:
    if not isinstance(value, list):
        r.bad("exit_triggers", "must be a list of trigger names or {\"trigger\", \"when\"}")
        return []
    out = []
    for i, item in enumerate(value):
        where = f"exit_triggers[{i}]"
        if isinstance(item, str) and item:
            out.append(TriggerRef(item))
            continue
        doc = r.mapping(item, where)
        if doc is None:
            continue
        r.unknown(doc, {"trigger", "when"}, f"{where}.")
        name = r.text(doc, "trigger", f"{where}.trigger")
        when = r.condition(doc, "when", f"{where}.when")
        if name is not None:
            out.append(TriggerRef(name, when))
    return out


def _goal(r: FieldReader, value: object) -> Goal | None:
    if value is None:
        return None
    doc = r.mapping(value, "goal")
    if doc is None:
        return None
    r.unknown(doc, {"trigger", "when", "target_share"}, "goal.")
    name = r.text(doc, "trigger", "goal.trigger")
    when = r.condition(doc, "when", "goal.when")
    share = r.number(doc, "target_share", "goal.target_share", 0, 100)
    return None if name is None or share is None else Goal(name, share, when)

