"""Per-step journey figures as CIJ shows them, read off the instances' paths.

For each step: *inflow* (visits), *processing* (people at the step now), *processed* (visits
that went on, or ended the journey normally there) and *exit* (people who left the journey
early at the step, by reason). Every visit is exactly one of the last three, so
``inflow = processing + processed + exit`` always holds.

``Tally.add`` takes one instance (the definition, and what the tests feed);
``Tally.add_figures`` takes the same figures already summed by the database over every
instance of a journey (``Figures``: visits per step, and where each instance is or ended), so
a report over a million people costs a few aggregate statements, not a million rows read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from clarion.domain.journeys.engine import COMPLETED


@dataclass(slots=True)
class StepCounts:
    id: str
    type: str
    inflow: int = 0
    processing: int = 0
    processed: int = 0
    exit: int = 0
    exit_reasons: Counter[str] = field(default_factory=Counter)
    variants: Counter[str] = field(default_factory=Counter)  # A/B push steps: people per variant
    channel: dict[str, Any] | None = None  # push steps: sent, delivered, opened... (reports)
    ab: dict[str, Any] | None = None  # A/B push steps: each variant's figures, the winner
    held: int | None = None  # push steps: people whose push waits for their quiet time to end

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "id": self.id, "type": self.type, "inflow": self.inflow,
            "processing": self.processing, "processed": self.processed, "exit": self.exit,
            "exit_reasons": dict(sorted(self.exit_reasons.items()))}
        if self.variants:
            out["variants"] = dict(sorted(self.variants.items()))
        if self.channel is not None:
            out["channel"] = self.channel
        if self.ab is not None:
            out["ab"] = self.ab
        if self.held is not None:
            out["held"] = self.held
        return out


@dataclass(frozen=True, slots=True)
class Figures:
    """A journey's instances summed: what ``Tally.add`` would see of them all together."""

    people: int
    inside: int
    goal_met: int
    visits: dict[str, int]  # step id -> visits (occurrences in paths)
    last: list[tuple[str, bool, str | None, int]]  # (last step, inside, done reason, instances)
    variants: list[tuple[str, str, int]]  # (step id, variant, instances)


class Tally:
    def __init__(self, steps: Sequence[tuple[str, str]]) -> None:
        """``steps``: (id, type) in document order; visits of steps no longer in the
        document (an older version's) are counted under their id at the end."""
        self._steps = {sid: StepCounts(sid, kind) for sid, kind in steps}
        self.people = 0
        self.inside = 0
        self.goal_met = 0

    def _at(self, step_id: str) -> StepCounts:
        found = self._steps.get(step_id)
        if found is None:
            found = self._steps[step_id] = StepCounts(step_id, "removed")
        return found

    def add(self, path: Sequence[str], status: str, done_reason: str | None,
            variants: Sequence[tuple[str, str]] = (), goal_met: bool = False) -> None:
        self.people += 1
        self.goal_met += int(goal_met)
        self.inside += int(status != "done")
        for sid in path:
            self._at(sid).inflow += 1
        for sid in path[:-1]:
            self._at(sid).processed += 1
        if path:
            last = self._at(path[-1])
            if status != "done":
                last.processing += 1
            elif done_reason == COMPLETED:
                last.processed += 1
            else:
                last.exit += 1
                last.exit_reasons[done_reason or "unknown"] += 1
        for sid, variant in variants:
            self._at(sid).variants[variant] += 1

    def add_figures(self, figures: Figures) -> None:
        """Count many instances at once (``add`` for each, summed): every visit but an
        instance's last is processed; the last is processing, processed or an exit."""
        self.people += figures.people
        self.inside += figures.inside
        self.goal_met += figures.goal_met
        for sid, visits in figures.visits.items():
            step = self._at(sid)
            step.inflow += visits
            step.processed += visits
        for sid, inside, done_reason, n in figures.last:
            step = self._at(sid)
            if inside:
                step.processed -= n
                step.processing += n
            elif done_reason != COMPLETED:
                step.processed -= n
                step.exit += n
                step.exit_reasons[done_reason or "unknown"] += n
        for sid, variant, n in figures.variants:
            self._at(sid).variants[variant] += n

    def steps(self) -> list[StepCounts]:
        return list(self._steps.values())
