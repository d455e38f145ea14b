"""The journey document: what a journey is, as typed values, and the structural reading of
its JSON form (``read``). Graph rules (targets, cycles, reachability) are in ``validation``.

Reading never stops at the first problem: every problem found is collected as a ``Problem``
naming the step id (when inside a step) and the field path, so a person fixes them all at once.

Shares are percentages everywhere (an A/B test's ``share_a``, a split's ``share``, a goal's
``target_share``). Conditions (``when``) are kept as text and checked by an injected parser
(``ConditionParser``): the filter language belongs to ``clarion.domain.filters``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Literal

from clarion.domain.compliance.quiet_times import profile_from_document
from clarion.domain.journeys.durations import (
    MAX_WAIT,
    parse_datetime,
    parse_duration,
    parse_local_time,
)
from clarion.errors import InvalidInput

END = "end"  # the target that finishes the journey
MAX_STEPS = 200
MAX_ID_LENGTH = 100
MAX_NAME_LENGTH = 200

ConditionParser = Callable[[str], object]
GraphCheck = Callable[["Journey"], list["Problem"]]
"""Checks a condition's text; raises ValueError (or an InvalidInput) saying what is wrong."""


def any_condition(text: str) -> object:
    """The default parser: any non-empty text (the filter language is plugged in later)."""
    return text


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a document: where (``step`` id, ``field`` path) and what."""

    field: str
    message: str
    step: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {"field": self.field, "message": self.message}
        if self.step is not None:
            out["step"] = self.step
        return out

    def __str__(self) -> str:
        where = f"step {self.step!r}, " if self.step is not None else ""
        return f"{where}{self.field}: {self.message}"


# ----------------------------------------------------------------------------- entries

ScheduleKind = Literal["once", "once_then_new", "repeat"]
Interaction = Literal["opened", "clicked"]
EntryInteraction = Literal["sent", "not_sent", "opened", "clicked"]
Reentry = Literal["never", "after_exit", "always"]


@dataclass(frozen=True, slots=True)
class Schedule:
    kind: ScheduleKind = "once"
    every: timedelta | None = None  # only for "repeat"


@dataclass(frozen=True, slots=True)
class SegmentEntry:
    segment_id: str
    schedule: Schedule = Schedule()


@dataclass(frozen=True, slots=True)
class TriggerEntry:
    trigger: str
    when: str | None = None


@dataclass(frozen=True, slots=True)
class InteractionEntry:
    interaction: EntryInteraction
    message_id: str | None = None
    journey_id: str | None = None
    step: str | None = None


Entry = SegmentEntry | TriggerEntry | InteractionEntry


@dataclass(frozen=True, slots=True)
class TriggerRef:
    trigger: str
    when: str | None = None


@dataclass(frozen=True, slots=True)
class Goal:
    trigger: str
    target_share: float  # percent of the people who entered
    when: str | None = None


# ------------------------------------------------------------------------------- steps


@dataclass(frozen=True, slots=True)
class AbTest:
    a: str  # message ids
    b: str
    share_a: int  # percent, 10..90
    metric: Interaction = "opened"
    ends_at: datetime | None = None
    significance: float | None = None  # e.g. 0.95: ends when the winner is that certain


@dataclass(frozen=True, slots=True)
class PushStep:
    id: str
    message_id: str | None = None
    ab: AbTest | None = None
    next: str | None = None
    send_before: timedelta | None = None  # a push held longer than this is skipped (expired)


@dataclass(frozen=True, slots=True)
class WaitStep:
    id: str
    duration: timedelta | None = None
    until: datetime | None = None
    until_local_time: time | None = None
    next: str | None = None


@dataclass(frozen=True, slots=True)
class WaitForInteractionStep:
    id: str
    within: timedelta
    yes: str
    no: str
    step: str | None = None  # an earlier push step, with ``interaction``
    interaction: Interaction | None = None
    trigger: str | None = None  # or a trigger (with an optional condition)
    when: str | None = None


@dataclass(frozen=True, slots=True)
class Branch:
    when: str
    next: str


@dataclass(frozen=True, slots=True)
class BranchStep:
    id: str
    branches: tuple[Branch, ...]
    otherwise: str


@dataclass(frozen=True, slots=True)
class Share:
    share: float  # percent
    next: str


@dataclass(frozen=True, slots=True)
class SplitStep:
    id: str
    shares: tuple[Share, ...]


@dataclass(frozen=True, slots=True)
class EndStep:
    id: str


Step = PushStep | WaitStep | WaitForInteractionStep | BranchStep | SplitStep | EndStep
STEP_TYPES = ("push", "wait", "wait_for_interaction", "branch", "split", "end")


@dataclass(frozen=True, slots=True)
class JourneyCompliance:
    """The journey's own compliance rules (docs/compliance.md): a quiet-time profile in place
    of the org's (and of the message's), and whether the frequency cap applies to it."""

    quiet_times: Mapping[str, Any] | None = None  # a profile document, checked when saved
    frequency_cap: Literal["apply", "exclude"] = "apply"


@dataclass(frozen=True, slots=True)
class Journey:
    name: str
    app_id: str
    entry: Entry
    steps: tuple[Step, ...]
    exclude_segment_ids: tuple[str, ...] = ()
    entry_limit_per_hour: int | None = None
    exit_triggers: tuple[TriggerRef, ...] = ()
    goal: Goal | None = None
    reentry: Reentry = "never"
    compliance: JourneyCompliance = JourneyCompliance()
    _index: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({s.id: i for i, s in enumerate(self.steps)})

    def get(self, step_id: str) -> Step:
        return self.steps[self._index[step_id]]

    def position(self, step_id: str) -> int:
        return self._index[step_id]

    @property
    def first(self) -> str:
        return self.steps[0].id if self.steps else END

    def following(self, step_id: str) -> str:
        """The step after ``step_id`` in list order, ``end`` after the last."""
        i = self._index[step_id] + 1
        return self.steps[i].id if i < len(self.steps) else END


def targets(journey: Journey, step: Step) -> list[str]:
    """Where a step can go next, in the order it names them (``end`` included)."""
    match step:
        case PushStep() | WaitStep():
            return [step.next or journey.following(step.id)]
        case WaitForInteractionStep():
            return [step.yes, step.no]
        case BranchStep():
            return [b.next for b in step.branches] + [step.otherwise]
        case SplitStep():
            return [s.next for s in step.shares]
        case EndStep():
            return []


# ----------------------------------------------------------------------------- reading


class _Reader:
    """Collects problems while turning the JSON document into values."""

    def __init__(self, parse_condition: ConditionParser) -> None:
        self.problems: list[Problem] = []
        self._parse_condition = parse_condition
        self.step: str | None = None

    def bad(self, fld: str, message: str) -> None:
        self.problems.append(Problem(fld, message, self.step))

    def text(self, doc: Mapping[str, Any], key: str, where: str, *, required: bool = True,
             max_length: int = MAX_ID_LENGTH) -> str | None:
        value = doc.get(key)
        if value is None:
            if required:
                self.bad(where, "is required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.bad(where, "must be a non-empty string")
            return None
        if len(value) > max_length:
            self.bad(where, f"is longer than {max_length} characters")
            return None
        return value

    def choice(self, doc: Mapping[str, Any], key: str, where: str, allowed: Sequence[str],
               default: str | None = None) -> str | None:
        value = doc.get(key, default)
        if value is None:
            self.bad(where, f"is required: one of {', '.join(allowed)}")
            return None
        if value not in allowed:
            self.bad(where, f"{value!r} is not one of {', '.join(allowed)}")
            return None
        return str(value)

    def condition(self, doc: Mapping[str, Any], key: str, where: str, *,
                  required: bool = False) -> str | None:
        value = self.text(doc, key, where, required=required, max_length=4000)
        if value is None:
            return None
        try:
            self._parse_condition(value)
        except ValueError as exc:
            self.bad(where, f"is not a valid condition: {exc}")
        except Exception as exc:  # an InvalidInput of the filter language
            message = getattr(exc, "message", None) or str(exc)
            self.bad(where, f"is not a valid condition: {message}")
        return value

    def number(self, doc: Mapping[str, Any], key: str, where: str, low: float, high: float,
               *, required: bool = True) -> float | None:
        value = doc.get(key)
        if value is None:
            if required:
                self.bad(where, f"is required: a number from {low:g} to {high:g}")
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not low <= value <= high:
            self.bad(where, f"must be a number from {low:g} to {high:g}, not {value!r}")
            return None
        return float(value)

    def wait_length(self, doc: Mapping[str, Any], key: str, where: str, *,
                    required: bool = True) -> timedelta | None:
        value = doc.get(key)
        if value is None:
            if required:
                self.bad(where, "is required: an ISO-8601 duration such as 'PT8S' or 'P2D'")
            return None
        try:
            length = parse_duration(value)
        except ValueError as exc:
            self.bad(where, str(exc))
            return None
        if length <= timedelta(0) or length > MAX_WAIT:
            self.bad(where, f"must be longer than zero and at most {MAX_WAIT.days} days")
            return None
        return length

    def mapping(self, value: object, where: str) -> Mapping[str, Any] | None:
        if not isinstance(value, Mapping):
            self.bad(where, "must be an object")
            return None
        return value

    def unknown(self, doc: Mapping[str, Any], known: set[str], prefix: str) -> None:
        for key in doc:
            if key not in known:
                self.bad(f"{prefix}{key}",
                         f"is not a field here (known: {', '.join(sorted(known))})")


def read(document: object, parse_condition: ConditionParser = any_condition,
         graph: GraphCheck | None = None) -> tuple[Journey | None, list[Problem]]:
    """The journey and every structural problem; the journey is None when any problem was
    found (a partial journey is never returned to run). With ``graph``, the steps' graph
    problems are added when the other fields have problems but the steps have none."""
    r = _Reader(parse_condition)
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
    steps = _steps(r, doc.get("steps"))
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


def _compliance(r: _Reader, value: object) -> JourneyCompliance:
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


def _id_list(r: _Reader, value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        r.bad(where, "must be a list of ids")
        return []
    return list(value)


def _entry(r: _Reader, value: object) -> Entry | None:
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


def _schedule(r: _Reader, value: object) -> Schedule | None:
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


def _exit_triggers(r: _Reader, value: object) -> list[TriggerRef]:
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


def _goal(r: _Reader, value: object) -> Goal | None:
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


def _steps(r: _Reader, value: object) -> list[Step] | None:
    if not isinstance(value, list) or not value:
        r.bad("steps", "must be a non-empty list of steps")
        return None
    if len(value) > MAX_STEPS:
        r.bad("steps", f"has {len(value)} steps; a journey has at most {MAX_STEPS}")
        return None
    out: list[Step] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        r.step = None
        doc = r.mapping(item, f"steps[{i}]")
        if doc is None:
            continue
        step_id = r.text(doc, "id", f"steps[{i}].id")
        if step_id is None:
            continue
        if step_id == END:
            r.bad(f"steps[{i}].id", "'end' is reserved: it is the target that ends the journey")
            continue
        if step_id in seen:
            r.bad(f"steps[{i}].id", f"{step_id!r} is used by an earlier step; ids are unique")
            continue
        seen.add(step_id)
        r.step = step_id
        step = _step(r, doc, step_id)
        if step is not None:
            out.append(step)
    r.step = None
    return out


def _step(r: _Reader, doc: Mapping[str, Any], step_id: str) -> Step | None:
    kind = r.choice(doc, "type", "type", STEP_TYPES)
    base = {"id", "type"}
    if kind == "push":
        r.unknown(doc, base | {"message_id", "ab", "next", "send_before"}, "")
        nxt = r.text(doc, "next", "next", required=False)
        message_id = r.text(doc, "message_id", "message_id", required=False)
        ab = _ab(r, doc["ab"]) if "ab" in doc else None
        if (message_id is None) == ("ab" not in doc):
            r.bad("message_id", "give either message_id or an A/B test (ab)")
        send_before = r.wait_length(doc, "send_before", "send_before", required=False)
        return PushStep(step_id, message_id, ab, nxt, send_before)
    if kind == "wait":
        r.unknown(doc, base | {"duration", "until", "until_local_time", "next"}, "")
        nxt = r.text(doc, "next", "next", required=False)
        given = [k for k in ("duration", "until", "until_local_time") if k in doc]
        if len(given) != 1:
            r.bad("duration", "give exactly one of duration, until or until_local_time")
            return None
        duration = r.wait_length(doc, "duration", "duration", required=False)
        until = local = None
        if "until" in doc:
            try:
                until = parse_datetime(doc["until"])
            except ValueError as exc:
                r.bad("until", str(exc))
        if "until_local_time" in doc:
            try:
                local = parse_local_time(doc["until_local_time"])
            except ValueError as exc:
                r.bad("until_local_time", str(exc))
        return WaitStep(step_id, duration, until, local, nxt)
    if kind == "wait_for_interaction":
        r.unknown(doc, base | {"step", "interaction", "trigger", "when", "within", "yes", "no"},
                  "")
        within = r.wait_length(doc, "within", "within")
        yes = r.text(doc, "yes", "yes")
        no = r.text(doc, "no", "no")
        pushed = r.text(doc, "step", "step", required=False)
        trigger = r.text(doc, "trigger", "trigger", required=False)
        interaction = None
        when = None
        if (pushed is None) == (trigger is None):
            r.bad("step", "give either step (an earlier push step, with interaction) or trigger")
        if pushed is not None:
            interaction = r.choice(doc, "interaction", "interaction", ("opened", "clicked"))
        elif "interaction" in doc:
            r.bad("interaction", "only a wait for a push step's interaction has one")
        if trigger is not None:
            when = r.condition(doc, "when", "when")
        elif "when" in doc:
            r.bad("when", "only a wait for a trigger has a condition")
        if within is None or yes is None or no is None:
            return None
        return WaitForInteractionStep(step_id, within, yes, no, pushed,
                                      interaction, trigger, when)  # type: ignore[arg-type]
    if kind == "branch":
        r.unknown(doc, base | {"branches", "otherwise"}, "")
        otherwise = r.text(doc, "otherwise", "otherwise")
        raw = doc.get("branches")
        if not isinstance(raw, list) or not raw:
            r.bad("branches", "must be a non-empty list of {\"when\", \"next\"}")
            return None
        branches = []
        for i, item in enumerate(raw):
            b = r.mapping(item, f"branches[{i}]")
            if b is None:
                continue
            r.unknown(b, {"when", "next"}, f"branches[{i}].")
            when = r.condition(b, "when", f"branches[{i}].when", required=True)
            nxt = r.text(b, "next", f"branches[{i}].next")
            if when is not None and nxt is not None:
                branches.append(Branch(when, nxt))
        return None if otherwise is None else BranchStep(step_id, tuple(branches), otherwise)
    if kind == "split":
        r.unknown(doc, base | {"shares"}, "")
        raw = doc.get("shares")
        if not isinstance(raw, list) or len(raw) < 2:
            r.bad("shares", "must list at least two {\"share\", \"next\"}")
            return None
        shares = []
        for i, item in enumerate(raw):
            s = r.mapping(item, f"shares[{i}]")
            if s is None:
                continue
            r.unknown(s, {"share", "next"}, f"shares[{i}].")
            share = r.number(s, "share", f"shares[{i}].share", 0, 100)
            nxt = r.text(s, "next", f"shares[{i}].next")
            if share is not None and nxt is not None:
                shares.append(Share(share, nxt))
        if len(shares) == len(raw) and abs(sum(s.share for s in shares) - 100) > 1e-9:
            r.bad("shares", f"add up to {sum(s.share for s in shares):g} %, not 100 %")
        return SplitStep(step_id, tuple(shares))
    if kind == "end":
        r.unknown(doc, base, "")
        return EndStep(step_id)
    return None


def _ab(r: _Reader, value: object) -> AbTest | None:
    doc = r.mapping(value, "ab")
    if doc is None:
        return None
    r.unknown(doc, {"a", "b", "share_a", "metric", "ends_at", "significance"}, "ab.")
    a = r.text(doc, "a", "ab.a")
    b = r.text(doc, "b", "ab.b")
    share_a = r.number(doc, "share_a", "ab.share_a", 10, 90)
    if share_a is not None and share_a != int(share_a):
        r.bad("ab.share_a", "must be a whole percentage from 10 to 90")
    metric = r.choice(doc, "metric", "ab.metric", ("opened", "clicked"), "opened")
    ends_at = None
    if "ends_at" in doc:
        try:
            ends_at = parse_datetime(doc["ends_at"])
        except ValueError as exc:
            r.bad("ab.ends_at", str(exc))
    significance = r.number(doc, "significance", "ab.significance", 0.5, 0.999, required=False)
    if ("ends_at" in doc) == (significance is not None) and "significance" not in doc:
        r.bad("ab.ends_at", "give either ends_at (a date-time) or significance (e.g. 0.95)")
    elif "ends_at" in doc and "significance" in doc:
        r.bad("ab.ends_at", "give either ends_at or significance, not both")
    if a is None or b is None or share_a is None or metric is None:
        return None
    return AbTest(a, b, int(share_a), metric, ends_at, significance)  # type: ignore[arg-type]
