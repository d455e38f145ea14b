"""Devices as Clarion holds them, and tracked registration requests, as read models."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

DeviceState = Literal["active", "invalid", "mismatch"]
STATES: tuple[DeviceState, ...] = ("active", "invalid", "mismatch")


@dataclass(frozen=True, slots=True)
class DeviceRead:
    id: str
    app_id: str
    person_id: str
    platform: str
    token: str
    state: DeviceState
    state_reason: str | None
    state_changed_at: datetime | None
    created_at: datetime
    last_registered_at: datetime


@dataclass(frozen=True, slots=True)
class RegistrationRead:
    id: str
    app_id: str
    kind: str
    user_id: str
    token_kind: str | None
    status: str
    failure_reason: str | None
    detail: str | None
    created_at: datetime
    finished_at: datetime | None
