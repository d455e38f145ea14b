"""The journey document: what a journey is, as typed values. Its JSON form is read into them by
``reading`` (the journey's own fields) and ``step_reading`` (its steps); graph rules (targets,
cycles, reachability) are in ``validation``.

Shares are percentages everywhere (an A/B test's ``share_a``, a split's ``share``, a goal's
``target_share``). Conditions (``when``) are kept as text and checked by an injected parser
(``ConditionParser``): the filter language belongs to ``clarion.domain.filters``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Literal

END = "end"  # the target that finishes the journey
MAX_STEPS = 200
MAX_ID_LENGTH = 100
MAX_NAME_LENGTH = 200

ConditionParser = Callable[[str], object]
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

