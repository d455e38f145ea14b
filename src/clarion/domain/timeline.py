"""A person's timeline: what was sent to them and what they did, newest first. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Annotated

from pydantic import Field


@dataclass(frozen=True, slots=True)
class DeviceOutcome:
    delivery_id: str
    device_id: str
    platform: str
    state: str  # pending | accepted | invalid_token | mismatch | rejected | expired …
    reason: str | None
    detail: str | None
    attempts: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    kind: Annotated[str, Field(description="send, held, released, blocked (compliance), "
                               "delivered, opened, clicked or dismissed")]
    send_id: str
    app_id: str
    journey_id: str | None = None
    journey_step_id: str | None = None
    message_id: str | None = None
    title: Annotated[str | None, Field(description="Sends: the message title.")] = None
    outcome: Annotated[str | None, Field(
        description="Sends: sent, not_sent, pending or no_valid_device.")] = None
    devices: Annotated[list[DeviceOutcome], Field(
        description="Sends: each device's outcome.")] = field(default_factory=list)
    device_id: Annotated[str | None, Field(
        description="Interactions: the reporting device.")] = None
    platform: str | None = None
    source: Annotated[str | None, Field(
        description="Interactions: cij_events, cij_legacy or link.")] = None
    reason: Annotated[str | None, Field(
        description="held, released, blocked: quiet_time, frequency_cap, no_consent or "
        "expired.")] = None
    until: Annotated[datetime | None, Field(
        description="held: when the person's quiet time ends.")] = None

    @property
    def sort_key(self) -> tuple[datetime, int, str]:
        return (self.at, _RANK.get(self.kind, 9), self.device_id or "")


_RANK = {"send": 0, "held": 1, "blocked": 1, "released": 2, "delivered": 3, "opened": 4,
         "clicked": 5, "dismissed": 6}


def newest_first(entries: list[TimelineEntry]) -> list[TimelineEntry]:
    return sorted(entries, key=lambda e: e.sort_key, reverse=True)


def with_outcome(e: TimelineEntry, devices: list[DeviceOutcome]) -> TimelineEntry:
    """sent: a device accepted it; pending: still fanning out or a device still trying;
    no_valid_device: fanned out and the person had no active device; not_sent: every device
    ended without acceptance (the devices say why)."""
    states = {d.state for d in devices}
    if "accepted" in states:
        outcome = "sent"
    elif "pending" in states or (not devices and e.outcome == "pending"):
        outcome = "pending"
    elif not devices:
        outcome = "no_valid_device"
    else:
        outcome = "not_sent"
    return replace(e, outcome=outcome, devices=devices)
