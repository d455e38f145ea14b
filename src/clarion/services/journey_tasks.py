"""The journey runtime's typed tasks (``clarion.store.tasks.Task``): their arguments and how
they travel in a job's payload. Handled by ``clarion.services.journey_runtime.JourneyRuntime``:

==================  ==============================  ===================================
task                arguments                       handler
==================  ==============================  ===================================
``journey.entry``   ``EntryPage``                   ``JourneyRuntime.entry_page``
``journey.enter``   ``LateEntry``                   ``JourneyRuntime.enter_later``
``journey.timer``   ``list[InstanceKey]``           ``JourneyRuntime.timers``
``journey.push``    ``list[PushOrder]``             ``JourneyRuntime.pushes``
==================  ==============================  ===================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clarion.services.journeys import PushOrder
from clarion.store.tasks import Task


@dataclass(frozen=True, slots=True)
class InstanceKey:
    journey_id: str
    version: int
    person_id: str
    entry_no: int
    step_id: str

    def encode(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies, and a page of entries encodes thousands.
        return {name: getattr(self, name) for name in self.__slots__}

    @staticmethod
    def decode(payload: Mapping[str, Any]) -> InstanceKey:
        return InstanceKey(**{k: payload[k] for k in InstanceKey.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class EntryPage:
    """Enter the next page of a segment journey's members after ``after``."""

    journey_id: str
    version: int
    after: str | None
    round: int  # repeating entries: which round (part of the job keys)

    def encode(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies, and a page of entries encodes thousands.
        return {name: getattr(self, name) for name in self.__slots__}

    @staticmethod
    def decode(payload: Mapping[str, Any]) -> EntryPage:
        return EntryPage(**{k: payload[k] for k in EntryPage.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class LateEntry:
    """A trigger entry waiting for the entry rate limit (with the trigger's data)."""

    journey_id: str
    version: int
    person_id: str
    data: dict[str, object]
    cause: str | None = None  # the fire's id: one entry per fire, however often delivered

    def encode(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @staticmethod
    def decode(payload: Mapping[str, Any]) -> LateEntry:
        return LateEntry(payload["journey_id"], int(payload["version"]),
                         payload["person_id"], dict(payload["data"]), payload.get("cause"))


JOURNEY_ENTRY: Task[EntryPage] = Task("journey.entry", EntryPage.encode, EntryPage.decode)
JOURNEY_ENTER: Task[LateEntry] = Task("journey.enter", LateEntry.encode, LateEntry.decode)
JOURNEY_TIMER: Task[list[InstanceKey]] = Task(
    "journey.timer", lambda keys: {"keys": [k.encode() for k in keys]},
    lambda payload: [InstanceKey.decode(k) for k in payload["keys"]])
JOURNEY_PUSH: Task[list[PushOrder]] = Task(
    "journey.push", lambda orders: {"orders": [o.encode() for o in orders]},
    lambda payload: [PushOrder.decode(o) for o in payload["orders"]])
