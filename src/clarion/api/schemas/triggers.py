"""Wire shapes of custom triggers (``/v1/orgs/{org_id}/triggers``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from clarion.domain.triggers import AttributeType, TriggerEvent, TriggerRead

__all__ = ["FireAccepted", "FireRequest", "TriggerCreate", "TriggerPage", "TriggerRead"]


class TriggerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="e.g. cart_abandoned (letters, digits, _ . -).",
                      max_length=100)
    attributes: dict[str, AttributeType] = Field(
        default_factory=dict, description='e.g. {"cart_total": "number", "city": "string"}.')


class FireRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(description="The person's id (GUID).")
    data: dict[str, Any] = Field(default_factory=dict,
                                 description="Values of the declared attributes.")


@dataclass(frozen=True, slots=True)
class FireAccepted:
    id: Annotated[str, Field(description="The fire's id (the same on an idempotent repeat).")]
    trigger: str
    user_id: str
    data: dict[str, Any]
    fired_at: datetime

    @staticmethod
    def of(event: TriggerEvent) -> FireAccepted:
        return FireAccepted(event.id, event.trigger, event.person_id, dict(event.data),
                            event.fired_at)


@dataclass(frozen=True, slots=True)
class TriggerPage:
    items: list[TriggerRead]
    next_cursor: Annotated[str | None, Field(description="Pass as `cursor` for the next page.")]
