"""What a stored journey looks like to the layers above the store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from clarion.domain.journeys.tally import StepCounts

State = Literal["draft", "live", "paused", "stopped"]


@dataclass(frozen=True, slots=True)
class JourneyRead:
    id: str
    org_id: str
    app_id: str
    name: str
    state: State
    version: int  # the newest document
    live_version: int | None  # the version people enter now (None until started)
    document: dict[str, Any]  # the newest document, as stored
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "app_id": self.app_id, "name": self.name, "state": self.state,
                "version": self.version, "live_version": self.live_version,
                "document": self.document, "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat(),
                "started_at": None if self.started_at is None else self.started_at.isoformat(),
                "stopped_at": None if self.stopped_at is None else self.stopped_at.isoformat()}


@dataclass(frozen=True, slots=True)
class JourneyReport:
    journey_id: str
    version: int
    state: State
    people: int  # instances (a person who re-entered counts once per entry)
    inside: int
    goal_met: int
    goal_target_share: float | None
    steps: list[StepCounts]
    held: int = 0  # people whose push of a step waits for the end of their quiet time

    def as_dict(self) -> dict[str, Any]:
        goal = None
        if self.goal_target_share is not None:
            share = 100.0 * self.goal_met / self.people if self.people else 0.0
            goal = {"met": self.goal_met, "share": round(share, 2),
                    "target_share": self.goal_target_share,
                    "reached": share >= self.goal_target_share and self.people > 0}
        return {"journey_id": self.journey_id, "version": self.version, "state": self.state,
                "people": self.people, "inside": self.inside, "held": self.held,
                "goal": goal,
                "steps": [s.as_dict() for s in self.steps]}

    def csv(self) -> str:
        import csv
        import io

        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["step", "type", "inflow", "processing", "processed", "exit",
                         "exit_reasons", *_CHANNEL_COLUMNS, "ab_a_rate", "ab_b_rate",
                         "ab_winner"])
        for s in self.steps:
            reasons = " ".join(f"{k}={v}" for k, v in sorted(s.exit_reasons.items()))
            writer.writerow([s.id, s.type, s.inflow, s.processing, s.processed, s.exit,
                             reasons, *_channel_cells(s.channel), *_ab_cells(s.ab)])
        return out.getvalue()


# A push step's channel figures in the CSV (empty cells for the other steps).
_CHANNEL_COLUMNS = ("sent_people", "not_sent_people", "blocked_people", "held_people",
                    "delivered_people", "opened_people", "clicked_people")


def _channel_cells(channel: dict[str, Any] | None) -> list[object]:
    if channel is None:
        return [""] * len(_CHANNEL_COLUMNS)
    return [channel["sent"]["people"], channel["not_sent"]["people"]["total"],
            channel["blocked"]["total"], channel["held"]["total"],
            *(channel[kind]["unique_people"] for kind in ("delivered", "opened", "clicked"))]


def _ab_cells(ab: dict[str, Any] | None) -> list[object]:
    if ab is None:
        return ["", "", ""]
    return [ab["a"]["rate"], ab["b"]["rate"], ab["winner"] or ""]
