"""Wire schemas of an org's compliance rules and a person's consent (docs/compliance.md)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CapWindows",
    "CompliancePolicy",
    "ComplianceRead",
    "ConsentRead",
    "ConsentSet",
    "FrequencyCaps",
]


class CapWindows(BaseModel):
    model_config = ConfigDict(extra="forbid")

    per_24h: int | None = Field(None, description="Most commercial pushes per person in any "
                                "24 hours (null: no cap).")
    per_7d: int | None = Field(None, description="… in any 7 days.")
    per_30d: int | None = Field(None, description="… in any 30 days.")


class FrequencyCaps(BaseModel):
    """``{"push": {"per_24h": 1, "per_7d": null, "per_30d": null}}``."""

    model_config = ConfigDict(extra="forbid")

    push: CapWindows


class CompliancePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    require_consent: bool | None = Field(
        None, description="Block commercial pushes to people who did not opt in (off by "
        "default, as in CIJ).")
    time_zone: str | None = Field(
        None, description="The org's IANA time zone, for quiet times of people without one.")


class ComplianceRead(BaseModel):
    require_consent: bool
    time_zone: str | None
    quiet_times: dict[str, Any] | None = Field(description="The quiet-time profile document.")
    frequency_caps: FrequencyCaps


class ConsentSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opted_in: bool
    source: str = Field("api", max_length=64, description="Where the choice was made.")


class ConsentRead(BaseModel):
    app_id: str
    user_id: str
    opted_in: bool | None = Field(description="null: the person never said.")
    source: str | None
    at: str | None


class BlockedRead(BaseModel):
    user_id: str
    reason: str = Field(description="frequency_cap, no_consent or expired")
    at: str


class ConsentItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(None, max_length=64, description="The person's id …")
    email: str | None = Field(None, max_length=320, description="… or their email.")
    opted_in: bool
    source: str | None = Field(None, max_length=64)


class ConsentBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[ConsentItem] = Field(min_length=1, max_length=1000)
    source: str = Field("api", min_length=1, max_length=64,
                        description="The source of items that name none.")


class RejectedItem(BaseModel):
    index: int = Field(description="The item's position in items (0-based).")
    reason: str


class ConsentImportRead(BaseModel):
    imported: int
    rejected: list[RejectedItem]
