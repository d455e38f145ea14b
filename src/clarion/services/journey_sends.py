"""``SendsPush`` (the runtime's ``JourneyPush`` port): a job's push orders become personalised
sends (``Sends.create`` with ``message_id``), **one send per group of orders** (same journey,
step, message and trigger data), never one per person. The send carries ``journey_id`` and
``journey_step_id``, so deliveries, reports, interactions and tracked links work per step; its
``Idempotency-Key`` is a digest of the orders' keys, so a job that runs again (a worker died
after the send was queued) finds the first send instead of sending twice. People of a trigger
journey get the data of the fire that entered them (``trigger`` placeholders); people deleted
since they entered are left out rather than failing the group. The journey's own compliance
rules and the step's "send before" deadline travel with the send (``SendRules``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from clarion.domain.journeys.document import PushStep
from clarion.domain.sends import SendCreate, SendRules
from clarion.errors import InvalidInput, NotFound
from clarion.services.journeys import PushOrder
from clarion.services.sending import Sends
from clarion.store import sends as send_store
from clarion.store.db import Database

if TYPE_CHECKING:
    from clarion.services.journey_versions import Versions

log = logging.getLogger(__name__)


class SendsPush:
    """``JourneyPush``: personalised sends, one per (journey, step, message, trigger data)
    group of a job's orders."""

    def __init__(self, db: Database, sends: Sends, versions: Versions) -> None:
        self._db = db
        self._sends = sends
        self._versions = versions

    async def send(self, orders: Sequence[PushOrder]) -> None:
        data: dict[tuple[str, str, int], dict[tuple[str, int], dict[str, Any]]] = {}
        by_version: dict[tuple[str, str, int], list[tuple[str, int]]] = {}
        for order in orders:
            by_version.setdefault((order.org_id, order.journey_id, order.version), []).append(
                (order.person_id, order.entry_no))
        for (org_id, journey_id, version), keys in by_version.items():
            data[(org_id, journey_id, version)] = await self._versions.trigger_data(
                org_id, journey_id, version, keys)
        groups: dict[tuple[str, str, int, str, str, str], list[PushOrder]] = {}
        for order in orders:
            found = data[(order.org_id, order.journey_id, order.version)].get(
                (order.person_id, order.entry_no))
            encoded = "" if found is None else json.dumps(found, sort_keys=True)
            groups.setdefault((order.org_id, order.journey_id, order.version, order.step_id,
                               order.message_id, encoded), []).append(order)
        for (org_id, journey_id, version, step_id, message_id, encoded), group in \
                groups.items():
            people = list(dict.fromkeys(o.person_id for o in group))
            digest = hashlib.sha256("\n".join(sorted(o.key for o in group)).encode())
            key = f"journey:{digest.hexdigest()}"
            trigger_data = json.loads(encoded) if encoded else None
            rules = await self._rules(journey_id, version, step_id)
            try:
                try:
                    await self._send(org_id, journey_id, step_id, message_id, people,
                                     trigger_data, key, rules)
                except InvalidInput as exc:
                    if exc.field != "user_ids":
                        raise
                    # People deleted since they entered: the others still get their push
                    # (nothing was stored, so the same key still says "this group").
                    async with self._db.read() as conn:
                        gone = await send_store.not_people(conn, org_id, people)
                    log.warning("journey %s step %s: %d people no longer exist; sending to "
                                "the others", journey_id, step_id, len(gone))
                    people = [p for p in people if p not in gone]
                    if people:
                        await self._send(org_id, journey_id, step_id, message_id, people,
                                         trigger_data, key, rules)
            except (InvalidInput, NotFound) as exc:
                # The message was deleted (or no longer renders) since the journey was
                # written: retrying cannot help, and a dead job would hold nothing back.
                log.warning("journey %s step %s: the push to %d people was not sent: %s",
                            journey_id, step_id, len(people), exc)

    async def _rules(self, journey_id: str, version: int, step_id: str) -> SendRules | None:
        """The journey's own compliance rules and the step's "send before" deadline."""
        journey = await self._versions.journey(journey_id, version)
        if journey is None:
            return None
        step = next((s for s in journey.steps if s.id == step_id), None)
        send_before = step.send_before if isinstance(step, PushStep) else None
        own = journey.compliance
        rules = SendRules(own.quiet_times, own.frequency_cap == "exclude", send_before)
        return None if rules == SendRules() else rules

    async def _send(self, org_id: str, journey_id: str, step_id: str, message_id: str,
                    people: list[str], trigger_data: dict[str, Any] | None, key: str,
                    rules: SendRules | None) -> None:
        command = SendCreate(message_id=message_id, user_ids=people, trigger_data=trigger_data)
        await self._sends.create(org_id, command, idempotency_key=key,
                                 journey_id=journey_id, journey_step_id=step_id, rules=rules)
