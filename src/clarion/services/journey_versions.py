"""Journey versions as the wiring needs them, read once (a version never changes once
stored): the parsed document, the segments, apps and triggers its conditions name, whether it
has an A/B step, and what the live journeys of an org listen to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from clarion.domain import filters
from clarion.domain.journeys.document import InteractionEntry, Journey
from clarion.domain.journeys.validation import parse
from clarion.store import journey_triggers as trigger_store
from clarion.store import journeys as journey_store
from clarion.store.db import Database


@lru_cache(maxsize=4096)
def condition(text: str) -> filters.Filter:
    """The parsed condition (documents were validated with the same parser when stored)."""
    return filters.parse(text)


def conditions_of(document: object) -> list[str]:
    """Every ``when`` of a journey document (entry, branches, waits, exits, goal)."""
    found: list[str] = []
    if isinstance(document, Mapping):
        for key, value in document.items():
            if key == "when" and isinstance(value, str):
                found.append(value)
            else:
                found += conditions_of(value)
    elif isinstance(document, list):
        for item in document:
            found += conditions_of(item)
    return found


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """What the wiring needs of one journey version (versions never change once stored)."""

    segments: frozenset[str]  # named by in_segment(...) in its conditions
    apps: frozenset[str]  # named by has_device(...)
    entry_trigger: str | None  # a trigger entry's trigger
    triggers: frozenset[str]  # every trigger it names (entry, waits, exits, goal)
    ab: bool  # it has an A/B push step (winners are read from the reports)
    segment_entry: bool


def triggers_of(document: object) -> set[str]:
    """Every trigger name of a journey document."""
    found: set[str] = set()
    if isinstance(document, Mapping):
        for key, value in document.items():
            if key == "trigger" and isinstance(value, str):
                found.add(value)
            elif key == "exit_triggers" and isinstance(value, list):
                found |= {v for v in value if isinstance(v, str)} | triggers_of(value)
            else:
                found |= triggers_of(value)
    elif isinstance(document, list):
        for item in document:
            found |= triggers_of(item)
    return found


def _has_ab(document: object) -> bool:
    steps = document.get("steps") if isinstance(document, Mapping) else None
    return not isinstance(steps, list) or any(
        isinstance(step, Mapping) and "ab" in step for step in steps)


class Versions:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._known: dict[tuple[str, int], VersionInfo] = {}
        self._parsed: dict[tuple[str, int], Journey | None] = {}

    async def info(self, journey_id: str, version: int) -> VersionInfo:
        key = (journey_id, version)
        found = self._known.get(key)
        if found is None:
            async with self._db.read() as conn:
                document = await journey_store.document(conn, journey_id, version)
            segments: set[str] = set()
            apps: set[str] = set()
            for text in conditions_of(document):
                node = condition(text)
                segments |= filters.segment_refs(node)
                apps |= filters.app_refs(node)
            entry = document.get("entry") if isinstance(document, Mapping) else None
            trigger = entry.get("trigger") if isinstance(entry, Mapping) \
                and entry.get("type") == "trigger" else None
            found = self._known[key] = VersionInfo(
                frozenset(segments), frozenset(apps),
                trigger if isinstance(trigger, str) else None, frozenset(triggers_of(document)),
                _has_ab(document), isinstance(entry, Mapping) and entry.get("type") == "segment")
        return found

    async def journey(self, journey_id: str, version: int) -> Journey | None:
        """The version's document parsed (kept: a version never changes)."""
        key = (journey_id, version)
        if key not in self._parsed:
            async with self._db.read() as conn:
                document = await journey_store.document(conn, journey_id, version)
            self._parsed[key] = None if document is None else parse(document)
        return self._parsed[key]

    async def outcome_entries(self, org_id: str) -> bool:
        """The org has a live journey whose entry is a push sent or not sent."""
        async with self._db.read() as conn:
            rows = await journey_store.live_of_org(conn, org_id, ("live",))
        for row in rows:
            journey = await self.journey(row.id, row.live_version or row.version)
            entry = None if journey is None else journey.entry
            if isinstance(entry, InteractionEntry) and entry.interaction in ("sent", "not_sent"):
                return True
        return False

    async def triggers_of_org(self, org_id: str) -> dict[str, datetime]:
        """The triggers that the org's live and paused journeys name, in any version people
        may still be inside, each with the earliest start of those journeys: a fire of any
        other trigger, or one fired before all of them started, has nothing to do."""
        async with self._db.read() as conn:
            rows = await journey_store.live_of_org(conn, org_id, ("live", "paused"))
        names: dict[str, datetime] = {}
        for row in rows:
            started = row.started_at or row.created_at
            for version in range(1, row.version + 1):
                for name in (await self.info(row.id, version)).triggers:
                    names[name] = min(names.get(name, started), started)
        return names

    async def trigger_data(self, org_id: str, journey_id: str, version: int,
                           keys: Sequence[tuple[str, int]]
                           ) -> dict[tuple[str, int], dict[str, Any]]:
        """The data of the fires that entered these (person, entry) of a trigger journey."""
        info = await self.info(journey_id, version)
        if info.entry_trigger is None:
            return {}
        async with self._db.read() as conn:
            return await trigger_store.entry_data(conn, org_id, journey_id, version,
                                                  info.entry_trigger, keys)
