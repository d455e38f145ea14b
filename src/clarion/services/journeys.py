"""Journeys: create, validate, version, move through the life cycle, report.

A journey is one validated document (``clarion.domain.journeys``); every change is checked
before anything is stored. Life cycle: draft → live ⇄ paused → stopped. Editing a draft
replaces its document; editing a live or paused journey adds a version that people enter from
then on, while the people already inside finish the version they entered. Stopping ends every
instance still inside (exit reason ``journey_stopped``).

Conditions are checked by the injected ``condition_parser`` (the filter language's parser once
it is plugged in at bootstrap; until then any non-empty text).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from clarion.clock import Clock
from clarion.domain.journeys.abtest import Arm, confidence, winner
from clarion.domain.journeys.document import (
    AbTest,
    ConditionParser,
    Journey,
    Problem,
    PushStep,
    any_condition,
)
from clarion.domain.journeys.engine import Facts, Instance
from clarion.domain.journeys.records import JourneyRead, JourneyReport, State
from clarion.domain.journeys.tally import Tally
from clarion.domain.journeys.validation import parse, validate
from clarion.errors import Conflict, NotFound
from clarion.services.apps import app_not_found, require_app
from clarion.services.orgs import require_org
from clarion.services.reports import Reports
from clarion.store import apps as app_store
from clarion.store import compliance as compliance_store
from clarion.store import journeys as store
from clarion.store.db import Conn, Database

STOPPED = "journey_stopped"

# (from states, to state) of each life-cycle move, and what to say when it does not apply.
_MOVES: dict[str, tuple[tuple[State, ...], State]] = {
    "start": (("draft",), "live"),
    "pause": (("live",), "paused"),
    "resume": (("paused",), "live"),
    "stop": (("live", "paused"), "stopped"),
}
_WHY: dict[tuple[str, str], str] = {
    ("start", "live"): "it is live already",
    ("start", "paused"): "it is paused: resume it (POST .../resume)",
    ("start", "stopped"): "a stopped journey cannot run again: create a new journey from "
                          "its document",
    ("pause", "draft"): "it has not started: start it first (POST .../start)",
    ("pause", "paused"): "it is paused already",
    ("pause", "stopped"): "it is stopped",
    ("resume", "draft"): "it has not started: start it (POST .../start)",
    ("resume", "live"): "it is live already",
    ("resume", "stopped"): "a stopped journey cannot run again: create a new journey from "
                           "its document",
    ("stop", "draft"): "it has not started (a draft has nobody inside)",
    ("stop", "stopped"): "it is stopped already",
}


# The ports of the runtime (clarion.services.journey_runtime): what it needs of segments,
# the send path and person facts, implemented by those features and plugged in at bootstrap.

class SegmentSource(Protocol):
    async def members(self, org_id: str, segment_id: str, after: str | None,
                      limit: int) -> list[str]:
        """Up to ``limit`` member ids after ``after``, ascending (keyset pages)."""
        ...

    async def contains(self, org_id: str, segment_id: str,
                       person_ids: Sequence[str]) -> set[str]:
        """Those of ``person_ids`` in the segment."""
        ...


@dataclass(frozen=True, slots=True)
class PushOrder:
    """Send ``message_id`` to every valid device of the person for the app, as the journey
    step's push; ``key`` is unique per person, entry and visit (the idempotency key)."""

    org_id: str
    app_id: str
    journey_id: str
    version: int
    step_id: str
    person_id: str
    entry_no: int
    message_id: str
    variant: str | None
    key: str

    def encode(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies, and a page of entries encodes thousands.
        return {name: getattr(self, name) for name in self.__slots__}

    @staticmethod
    def decode(payload: Mapping[str, Any]) -> PushOrder:
        return PushOrder(**{k: payload[k] for k in PushOrder.__dataclass_fields__})


class JourneyPush(Protocol):
    async def send(self, orders: Sequence[PushOrder]) -> None:
        """Send each order's message to every valid device of its person (up to
        ``PUSH_BATCH`` orders, often one message to a page of people: one send with many
        user ids). Must be idempotent per ``order.key``: a job that dies mid-way runs
        again."""
        ...


class FactsSource(Protocol):
    async def facts(self, org_id: str, instance: Instance,
                    trigger: Mapping[str, object] | None) -> Facts:
        """What ``step()`` may ask about the person (with the trigger's data, if any)."""
        ...


def journey_not_found(org_id: str, journey_id: str) -> NotFound:
    return NotFound(f"journey {journey_id} does not exist in organization {org_id}",
                    fix=f"List the journeys with `clarion journeys list --org {org_id}` "
                    f"(GET /v1/orgs/{org_id}/journeys).")


def _steps_of(journey: Journey) -> list[tuple[str, str]]:
    return [(s.id, _TYPE_NAMES[type(s).__name__]) for s in journey.steps]


_TYPE_NAMES = {"PushStep": "push", "WaitStep": "wait",
               "WaitForInteractionStep": "wait_for_interaction", "BranchStep": "branch",
               "SplitStep": "split", "EndStep": "end"}


class Journeys:
    def __init__(self, db: Database, clock: Clock,
                 condition_parser: ConditionParser = any_condition, *,
                 went_live: Callable[[str], Awaitable[None]] | None = None,
                 reports: Reports | None = None) -> None:
        """``went_live(journey_id)`` runs after a journey starts, resumes or gets a new live
        version (the runtime queues its segment entry there: ``JourneyRuntime.started``)."""
        self._db = db
        self._clock = clock
        self._conditions = condition_parser
        self._went_live = went_live
        self._reports = reports  # per push step channel figures in the journey report

    def parse(self, document: object) -> Journey:
        """The journey of a document, or ``JourneyInvalid`` listing every problem."""
        return parse(document, self._conditions)

    async def validate(self, org_id: str, document: object) -> list[Problem]:
        """Every problem of the document (empty when valid), the app's existence included;
        nothing is stored."""
        problems = validate(document, self._conditions)
        app_id = document.get("app_id") if isinstance(document, Mapping) else None
        async with self._db.read() as conn:
            await require_org(conn, org_id)
            if isinstance(app_id, str) and app_id and not await app_store.exists(
                    conn, org_id, app_id):
                problems.append(Problem("app_id", app_not_found(org_id, app_id).message))
        return problems

    async def create(self, org_id: str, document: Mapping[str, Any]) -> JourneyRead:
        """A new journey in state draft, version 1."""
        journey = self.parse(document)
        journey_id = str(uuid.uuid4())
        now = self._clock.now()
        async with self._db.write() as conn:
            await require_org(conn, org_id)
            await require_app(conn, org_id, journey.app_id, field="app_id")
            await store.insert_journey(conn, journey_id=journey_id, org_id=org_id,
                                       app_id=journey.app_id, name=journey.name,
                                       document=document, now=now)
            found = await store.get(conn, org_id, journey_id)
        assert found is not None
        return found

    async def get(self, org_id: str, journey_id: str) -> JourneyRead:
        async with self._db.read() as conn:
            return await self._require(conn, org_id, journey_id)

    async def of_org(self, org_id: str) -> list[JourneyRead]:
        async with self._db.read() as conn:
            found = await store.of_org(conn, org_id)
            if not found:
                await require_org(conn, org_id)
        return found

    async def update(self, org_id: str, journey_id: str,
                     document: Mapping[str, Any]) -> JourneyRead:
        """Replace the document: in place for a draft, as a new version otherwise (people
        inside finish the version they entered). A stopped journey is not edited (409)."""
        journey = self.parse(document)
        now = self._clock.now()
        async with self._db.write() as conn:
            current = await self._require(conn, org_id, journey_id, lock=True)
            if current.state == "stopped":
                raise Conflict(f"journey {journey_id} is stopped and cannot be edited",
                               fix="Create a new journey with this document.")
            await require_app(conn, org_id, journey.app_id, field="app_id")
            values: dict[str, Any] = {"name": journey.name, "app_id": journey.app_id,
                                      "updated_at": now}
            if current.state == "draft":
                await store.replace_document(conn, journey_id, current.version, document)
            else:
                version = current.version + 1
                await store.add_version(conn, journey_id, version, document, now)
                values |= {"version": version, "live_version": version}
            await store.update_journey(conn, journey_id, values)
            found = await store.get(conn, org_id, journey_id)
        assert found is not None
        if found.state == "live" and current.state == "live" and self._went_live is not None:
            await self._went_live(journey_id)
        return found

    async def move(self, org_id: str, journey_id: str, action: str) -> JourneyRead:
        """``start`` | ``pause`` | ``resume`` | ``stop``; 409 naming why when the journey's
        state does not allow it."""
        sources, target = _MOVES[action]
        now = self._clock.now()
        async with self._db.write() as conn:
            current = await self._require(conn, org_id, journey_id, lock=True)
            if current.state not in sources:
                why = _WHY.get((action, current.state), f"it is {current.state}")
                raise Conflict(f"journey {journey_id} cannot {action}: {why}",
                               code="journey_state",
                               fix=f"Its state is {current.state}; the life cycle is draft → "
                               "live ⇄ paused → stopped.")
            values: dict[str, Any] = {"state": target, "updated_at": now}
            if action == "start":
                values |= {"live_version": current.version, "started_at": now}
            if action == "stop":
                values["stopped_at"] = now
                await store.exit_everyone(conn, journey_id, STOPPED, now)
            await store.update_journey(conn, journey_id, values)
            found = await store.get(conn, org_id, journey_id)
        assert found is not None
        if target == "live" and self._went_live is not None:
            await self._went_live(journey_id)
        return found

    async def start(self, org_id: str, journey_id: str) -> JourneyRead:
        return await self.move(org_id, journey_id, "start")

    async def pause(self, org_id: str, journey_id: str) -> JourneyRead:
        return await self.move(org_id, journey_id, "pause")

    async def resume(self, org_id: str, journey_id: str) -> JourneyRead:
        return await self.move(org_id, journey_id, "resume")

    async def stop(self, org_id: str, journey_id: str) -> JourneyRead:
        return await self.move(org_id, journey_id, "stop")

    async def report(self, org_id: str, journey_id: str) -> JourneyReport:
        """Per step, in the newest document's order: inflow, processing, processed, exit and
        exit reasons, over every version's instances (summed by the database)."""
        async with self._db.read() as conn:
            current = await self._require(conn, org_id, journey_id)
            figures = await store.figures(conn, journey_id)
            held = await compliance_store.held_by_step(conn, journey_id)
        journey = parse(current.document)  # stored documents were valid when stored
        tally = Tally(_steps_of(journey))
        tally.add_figures(figures)
        steps = tally.steps()
        for counts in steps:
            if counts.type == "push":
                counts.held = held.get(counts.id, 0)
        if self._reports is not None:
            # The channel figures of each push step (sent, not sent by reason, delivered,
            # opened, clicked, rates) from the report roll-ups, since the journey was created
            # (at most the 400 days a daily report covers).
            now = self._clock.now()
            # (at least the last hour: a range must not be empty)
            since = max(min(current.created_at, now - timedelta(hours=1)),
                        now - timedelta(days=399))
            pushes = {s.id: s for s in journey.steps if isinstance(s, PushStep)}
            for counts in steps:
                if counts.type == "push":
                    channel = await self._reports.report(
                        org_id, scope="journey_step", scope_id=f"{journey_id}/{counts.id}",
                        since=since, until=None, granularity="day", by_platform=False)
                    counts.channel = channel.totals.as_dict()
                    test = pushes[counts.id].ab if counts.id in pushes else None
                    if test is not None:
                        counts.ab = await self._ab_results(org_id, test, counts.variants,
                                                           since)
        return JourneyReport(
            journey_id=journey_id, version=current.version, state=current.state,
            people=tally.people, inside=tally.inside, goal_met=tally.goal_met,
            held=sum(held.values()),
            goal_target_share=None if journey.goal is None else journey.goal.target_share,
            steps=steps)

    async def _ab_results(self, org_id: str, test: AbTest, people: Mapping[str, int],
                          since: datetime) -> dict[str, Any]:
        """Each variant's message, people, channel figures and rate of the test's metric
        (the message's own report: an A/B message is the step's), and where the test stands:
        the winner once decided (as the runtime decides it), else the confidence so far."""
        assert self._reports is not None
        now = self._clock.now()
        out: dict[str, Any] = {"metric": test.metric}
        arms: list[Arm] = []
        for variant, message_id in (("a", test.a), ("b", test.b)):
            totals = (await self._reports.report(
                org_id, scope="message", scope_id=message_id, since=since, until=None,
                granularity="day", by_platform=False)).totals
            hits = totals.opened if test.metric == "opened" else totals.clicked
            arm = Arm(totals.sent_people, hits.unique_people)
            arms.append(arm)
            out[variant] = {"message_id": message_id, "people": people.get(variant, 0),
                            "sent_people": arm.sent, f"{test.metric}_people": arm.hits,
                            "rate": round(arm.rate, 4), "channel": totals.as_dict()}
        out["winner"] = winner(test, arms[0], arms[1], now)
        out["confidence"] = round(confidence(arms[0], arms[1]), 4)
        return out

    async def _require(self, conn: Conn, org_id: str, journey_id: str, *,
                       lock: bool = False) -> JourneyRead:
        found = await store.get(conn, org_id, journey_id, lock=lock)
        if found is None:
            await require_org(conn, org_id)
            raise journey_not_found(org_id, journey_id)
        return found
