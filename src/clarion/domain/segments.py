"""Segments as the services hand them out: typed, immutable reads.

A segment is either ``dynamic`` (a filter in the language of ``clarion.domain.filters``,
evaluated by the database whenever it is read) or ``static`` (a list of people imported once).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

SegmentKind = Literal["dynamic", "static"]
MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class SegmentRead:
    id: str
    name: str
    kind: SegmentKind
    filter: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SegmentSize:
    count: int
    sample: Annotated[list[str], Field(description="Up to 10 member ids, in id order.")]


@dataclass(frozen=True, slots=True)
class ImportResult:
    added: int
    already: Annotated[int, Field(description="Lines naming someone already a member.")]
    unknown: Annotated[list[str], Field(description="Ids or emails that are nobody in the org "
                                        "(at most 100 shown).")]
    unknown_count: int
