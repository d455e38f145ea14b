"""Wire shapes of segments (``/v1/orgs/{org_id}/segments``). Filters are validated by the
service (``clarion.domain.filters``), so the API, the CLI and journeys get the same 400."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from clarion.domain.segments import ImportResult, SegmentRead, SegmentSize

__all__ = [
    "ImportResult",
    "MemberPage",
    "SegmentCreate",
    "SegmentPage",
    "SegmentRead",
    "SegmentSize",
    "SegmentUpdate",
]

FILTER_HELP = ("Dynamic segments: e.g. \"tier eq 'gold' or tier eq 'silver'\" (eq ne gt ge lt "
               "le, and or not, in (...), contains/startswith/endswith, has_device('<app id>'),"
               " in_segment('<segment id>'); see docs/segments.md).")


class SegmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=200)
    kind: Literal["dynamic", "static"] = "dynamic"
    filter: str | None = Field(None, description=FILTER_HELP)


class SegmentUpdate(BaseModel):
    """PUT replaces the name and filter; the kind cannot change."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=200)
    kind: Literal["dynamic", "static"] | None = None
    filter: str | None = Field(None, description=FILTER_HELP)


@dataclass(frozen=True, slots=True)
class SegmentPage:
    items: list[SegmentRead]
    next_cursor: Annotated[str | None, Field(description="Pass as `cursor` for the next page.")]


@dataclass(frozen=True, slots=True)
class MemberPage:
    items: Annotated[list[str], Field(description="Person ids, ascending.")]
    next_cursor: Annotated[str | None, Field(description="Pass as `cursor` for the next page.")]
