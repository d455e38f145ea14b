"""Sends: one message to every currently valid device of one or more people for one app.

The people are given (``user_id``/``user_ids``: recorded with the send) or a segment
(``segment_id``: fan-out reads its members page by page, so a send to 1,000,000 people is
accepted as fast as a send to one).

``create`` validates, records the send and its first fan-out page's job in one transaction and
returns at once (202). With an ``Idempotency-Key`` the same key within 24 hours returns the
same send and queues nothing again. ``get`` reports the per-device outcomes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from clarion.clock import Clock
from clarion.domain.people import canonical_guid
from clarion.domain.sends import SendCreate, SendRead, SendRules, send_state, succeeded
from clarion.domain.text import controls
from clarion.errors import InvalidInput, NotFound
from clarion.services.apps import require_app
from clarion.services.fanout import page_job
from clarion.services.orgs import require_org
from clarion.services.personalised import personalised_document
from clarion.store import compliance, send_waits
from clarion.store import segments as segment_store
from clarion.store import sends as store
from clarion.store.db import Conn, Database, Duplicate
from clarion.store.jobs import JobQueue

IDEMPOTENCY_WINDOW = timedelta(hours=24)


def _canonical(ids: list[str]) -> tuple[list[str], list[str]]:
    """(the people's ids in their stored (lower-case) form, once each, in the order given;
    the given ids that are not GUIDs): one look at each id (100,000 in a send)."""
    canonical = list(map(canonical_guid, ids))
    if None in canonical:
        return [], [i for i, g in zip(ids, canonical, strict=True) if g is None]
    return list(dict.fromkeys(canonical)), []  # type: ignore[arg-type]  # (no None left)


async def _require_segment(conn: Conn, org_id: str, segment_id: str | None) -> str | None:
    """The canonical id of the send's segment (``None``: the audience was given)."""
    if segment_id is None:
        return None
    guid = canonical_guid(segment_id)
    if guid is None or await segment_store.get(conn, org_id, guid) is None:
        raise InvalidInput(f"segment {segment_id!r} does not exist in this organization",
                           field="segment_id", fix=f"List the segments with GET "
                           f"/v1/orgs/{org_id}/segments, or create one first.")
    return guid


@dataclass(frozen=True, slots=True)
class SendAccepted:
    send: SendRead
    created: bool  # False when an Idempotency-Key returned an earlier send


class Sends:
    def __init__(self, db: Database, clock: Clock, queue: JobQueue) -> None:
        self._db = db
        self._clock = clock
        self._queue = queue

    async def create(self, org_id: str, command: SendCreate, *,
                     idempotency_key: str | None = None, journey_id: str | None = None,
                     journey_step_id: str | None = None, test: bool = False,
                     rules: SendRules | None = None) -> SendAccepted:
        """Queue a send. With ``command.message_id`` each person gets the stored message
        rendered for them (fan-out renders it); ``journey_id``/``journey_step_id`` key the
        send's reports; ``test`` sends carry an empty trackingId and an untracked link (CIJ);
        ``rules``: a journey's own compliance rules."""
        if idempotency_key is not None and not 0 < len(idempotency_key) <= 200:
            raise InvalidInput("the Idempotency-Key header must be 1 to 200 characters",
                               fix="Use a UUID per logical send.", field="Idempotency-Key")
        now = self._clock.now()
        if idempotency_key:
            controls(idempotency_key, "Idempotency-Key")  # stored, and compared in SQL
            earlier = await self._by_key(org_id, idempotency_key)
            if earlier is not None:
                return earlier
        audience, not_ids = _canonical(command.audience)
        if not_ids:
            raise InvalidInput(f"{len(not_ids)} user id(s) are not person ids (GUIDs), "
                               f"e.g. {not_ids[0]!r}", field="user_ids",
                               fix="Pass the ids Clarion gave the people (or their CIJ "
                               "contact/lead ids).")
        async with self._db.read() as conn:
            if command.message is not None:
                assert command.app_id is not None  # SendCreate's rule
                app_id, document = command.app_id, command.message.message().as_dict()
                ttl = command.message.ttl
            else:
                app_id, document, ttl = await personalised_document(
                    conn, org_id, command, test=test)
            await require_app(conn, org_id, app_id, field="app_id")
            segment_id = await _require_segment(conn, org_id, command.segment_id)
            # One statement whatever the audience's size (the ids go as one parameter).
            unknown = await store.not_people(conn, org_id, audience) if audience else set()
        if unknown:
            example = next(i for i in audience if i in unknown)
            raise InvalidInput(f"{len(unknown)} user id(s) are not people of this organization, "
                               f"e.g. {example!r}", field="user_ids",
                               fix=f"Look people up with `clarion contacts list --org {org_id}` "
                               f"(GET /v1/orgs/{org_id}/people); create or import them first, "
                               "or remove these ids.")
        if test and command.message is not None:
            document["test"] = True
        send_id = str(uuid.uuid4())
        expires_at = now + timedelta(seconds=ttl or 60)
        if rules is not None and rules.send_before is not None:
            expires_at = min(expires_at, now + rules.send_before)
        # The send's own word, else the stored message's, else commercial (the strict one).
        template = document.get("template") if command.message_id is not None else None
        category = command.category or (template.get("category") if isinstance(template, dict)
                                        else None) or "commercial"
        row = {
            "id": send_id, "org_id": org_id, "app_id": app_id, "message": document,
            "idempotency_key": idempotency_key, "state": "queued", "fanned_out_people": 0,
            "device_count": 0, "created_at": now, "expires_at": expires_at,
            "fanned_out_at": None, "message_id": command.message_id,
            "category": category,
            "journey_id": journey_id, "journey_step_id": journey_step_id,
            "segment_id": segment_id, "rules": None if rules is None else rules.stored(),
        }
        try:
            async with self._db.write() as conn:
                if idempotency_key:  # a key older than the window may be used again
                    await store.release_key(conn, org_id, idempotency_key,
                                            now - IDEMPOTENCY_WINDOW)
                await store.insert_send(conn, row, audience)
                await self._queue.enqueue(conn, [page_job(send_id, 0)])
        except Duplicate:
            # Another request with the same key won the race: answer with its send.
            earlier = await self._by_key(org_id, idempotency_key) if idempotency_key else None
            if earlier is None:
                raise
            return earlier
        # What was accepted, as accepted (not read back: the audience may be 100,000 ids).
        return SendAccepted(SendRead(
            id=send_id, app_id=app_id, user_ids=audience, message=document,
            state="queued", created_at=now, expires_at=expires_at, counts={},
            succeeded=None, deliveries=[], waiting=[], category=category,
            segment_id=segment_id, people=len(audience)), created=True)

    async def _by_key(self, org_id: str, key: str) -> SendAccepted | None:
        since = self._clock.now() - IDEMPOTENCY_WINDOW
        async with self._db.read() as conn:
            send_id = await store.id_by_key(conn, org_id, key, since)
        if send_id is None:
            return None
        return SendAccepted(await self.get(org_id, send_id), created=False)

    async def get(self, org_id: str, send_id: str, *, limit: int = 1000,
                  after: str | None = None) -> SendRead:
        async with self._db.read() as conn:
            row = await store.get(conn, send_id, org_id)
            if row is None:
                await require_org(conn, org_id)
                raise NotFound(f"send {send_id} does not exist in organization {org_id}",
                               fix=f"Use the id returned by `clarion send` or POST "
                               f"/v1/orgs/{org_id}/sends.")
            counts = await store.delivery_counts(conn, send_id)
            deliveries = await store.deliveries(conn, send_id, after=after, limit=limit)
            # A segment's audience may be 1,000,000 people: read back as its size only.
            user_ids = [] if row.segment_id else await store.audience(conn, send_id)
            waiting = await send_waits.waiting(conn, send_id) if counts.get("pending") else []
            held = await compliance.held_count(conn, send_id)
            blocked = await compliance.blocked(conn, row.org_id, row.app_id, send_id)
        return SendRead(
            id=row.id, app_id=row.app_id, user_ids=user_ids, message=row.message,
            state=send_state(row.state, counts.get("pending", 0), held),
            created_at=row.created_at, expires_at=row.expires_at, counts=counts,
            succeeded=succeeded(row.state, counts), deliveries=deliveries, waiting=waiting,
            category=row.category, held=held, blocked=blocked, segment_id=row.segment_id,
            people=row.people_count)
