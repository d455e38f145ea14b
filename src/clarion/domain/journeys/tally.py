"""Per-step journey figures as CIJ shows them, read off the instances' paths.

For each step: *inflow* (visits), *processing* (people at the step now), *processed* (visits
that went on, or ended the journey normally there) and *exit* (people who left the journey
early at the step, by reason). Every visit is exactly one of the last three, so
``inflow = processing + processed + exit`` always holds. Fed one instance at a time, so a
report over a million people reads them in pages.
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
        return out


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

    def steps(self) -> list[StepCounts]:
        return list(self._steps.values())
