"""An org's compliance rules (quiet times, frequency caps, consent) and people's consent.

Each rule is checked when it is saved (``clarion.domain.compliance``: a bad document is a 400
naming the field, and nothing changes) and stored as given; fan-out reads them once per page
(``clarion.services.screening``). Consent is off by default, as in CIJ: only an org that sets
``require_consent`` blocks commercial pushes to people who did not opt in.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from clarion.clock import Clock
from clarion.domain import unsubscribe
from clarion.domain.compliance.caps import caps_from_document
from clarion.domain.compliance.quiet_times import profile_from_document
from clarion.domain.people import canonical_guid, normalize_time_zone
from clarion.errors import InvalidInput, NotFound
from clarion.services.apps import require_app
from clarion.services.importing import UnreadableRow
from clarion.services.orgs import require_org
from clarion.services.people import require_person
from clarion.store import compliance as store
from clarion.store import sends as sends_store
from clarion.store.db import Database

NO_CAPS = {"push": {"per_24h": None, "per_7d": None, "per_30d": None}}
MAX_SOURCE = 64


@dataclass(frozen=True, slots=True)
class ComplianceRead:
    require_consent: bool
    time_zone: str | None
    quiet_times: dict[str, Any] | None
    frequency_caps: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BlockedRead:
    user_id: str
    reason: str  # frequency_cap | no_consent | expired
    at: str


def blocked_csv(rows: list[BlockedRead]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["user_id", "reason", "at"])
    writer.writerows((r.user_id, r.reason, r.at) for r in rows)
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class ConsentRead:
    app_id: str
    user_id: str
    opted_in: bool | None  # None: the person never said
    source: str | None
    at: str | None


_YES = {"true", "yes", "y", "1", "opted_in", "in"}
_NO = {"false", "no", "n", "0", "opted_out", "out"}
IMPORT_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class ConsentImport:
    """What an import did: rows recorded, and each refused row with its line and why."""

    imported: int
    rejected: list[tuple[int, str]]


def _choice(row: Mapping[str, object]) -> bool:
    value = row.get("opted_in")
    if isinstance(value, bool):
        return value
    text = str(value).strip().casefold() if value is not None else ""
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise InvalidInput(f"opted_in {value!r} is neither yes nor no", field="opted_in",
                       fix="Write true or false (also yes/no, 1/0).")


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    app_name: str
    done: bool  # the opt-out was recorded (a confirmation), or only looked up


class Compliance:
    def __init__(self, db: Database, clock: Clock, unsubscribe_key: bytes,
                 public_url: str) -> None:
        self._db = db
        self._clock = clock
        self._unsubscribe_key = unsubscribe_key
        self._public_url = public_url

    def unsubscribe_url(self, app_id: str, person_id: str) -> str:
        """The person's unsubscribe link for the app (what a message's unsubscribe
        placeholder renders to)."""
        return unsubscribe.unsubscribe_url(self._public_url, self._unsubscribe_key, app_id,
                                           person_id)

    async def unsubscribe(self, token: str, *, confirm: bool) -> Unsubscribe:
        """The app an unsubscribe link is for; with ``confirm``, record the person's opt-out
        (source ``unsubscribe link``). NotFound for a forged or stale link."""
        named = unsubscribe.verify(self._unsubscribe_key, token)
        if named is not None:
            app_id, person_id = named
            async with self._db.read() as conn:
                found = await store.app_and_person(conn, app_id, person_id)
            if found is not None:
                org_id, name = found
                if confirm:
                    await self.set_consent(org_id, app_id, person_id, opted_in=False,
                                           source="unsubscribe link")
                return Unsubscribe(name, confirm)
        raise NotFound("this unsubscribe link is not valid",
                       fix="Open it again from the notification, or change your choice in "
                       "the app.")

    async def get(self, org_id: str) -> ComplianceRead:
        async with self._db.read() as conn:
            await require_org(conn, org_id)
            row = await store.settings(conn, org_id)
        if row is None:
            return ComplianceRead(False, None, None, NO_CAPS)
        return ComplianceRead(row.require_consent, row.time_zone, row.quiet_times,
                              row.frequency_caps or NO_CAPS)

    async def set_frequency_caps(self, org_id: str, doc: Mapping[str, object]) -> ComplianceRead:
        caps = caps_from_document(doc)
        stored = {channel: cap.as_document() for channel, cap in caps.items()}
        return await self._save(org_id, {"frequency_caps": {**NO_CAPS, **stored}})

    async def set_quiet_times(self, org_id: str,
                              doc: Mapping[str, object] | None) -> ComplianceRead:
        if doc is not None:
            profile_from_document(doc)  # a 400 naming the field, before anything is stored
        return await self._save(org_id, {"quiet_times": None if doc is None else dict(doc)})

    async def set_policy(self, org_id: str, *, require_consent: bool | None = None,
                         time_zone: str | None = None, clear_time_zone: bool = False
                         ) -> ComplianceRead:
        values: dict[str, Any] = {}
        if require_consent is not None:
            values["require_consent"] = require_consent
        if time_zone is not None:
            values["time_zone"] = normalize_time_zone(time_zone)
        elif clear_time_zone:
            values["time_zone"] = None
        return await self._save(org_id, values)

    async def _save(self, org_id: str, values: dict[str, Any]) -> ComplianceRead:
        if values:
            async with self._db.write() as conn:
                await require_org(conn, org_id)
                await store.save_settings(conn, org_id, values, self._clock.now())
        return await self.get(org_id)

    async def blocked_recipients(self, org_id: str, send_id: str) -> list[BlockedRead]:
        """Everyone the rules kept the send from, with the reason, in the order decided."""
        out: list[BlockedRead] = []
        async with self._db.read() as conn:
            if await sends_store.get(conn, send_id, org_id) is None:
                await require_org(conn, org_id)
                raise NotFound(f"send {send_id} does not exist in organization {org_id}",
                               fix=f"Use the id returned by POST /v1/orgs/{org_id}/sends.")
            after = 0
            while True:  # keyset pages: bounded statements whatever the send's size
                page = await store.blocked_of_send(conn, send_id, after=after, limit=5000)
                out += [BlockedRead(e.person_id, e.reason, e.at.isoformat()) for _, e in page]
                if len(page) < 5000:
                    return out
                after = page[-1][0]

    async def import_consents(self, org_id: str, app_id: str,
                              rows: Iterable[tuple[int, Mapping[str, object]]], *,
                              source: str = "import",
                              progress: Callable[[int], None] | None = None) -> ConsentImport:
        """Record many people's choice: rows with ``user_id`` or ``email``, ``opted_in`` and
        optionally ``source`` (CSV or JSON lines through ``services.importing.iter_rows``).
        A bad row is refused alone, with its line; chunks of 1,000 rows, one transaction
        each."""
        async with self._db.read() as conn:
            await require_app(conn, org_id, app_id)
        imported, rejected = 0, list[tuple[int, str]]()
        chunk: list[tuple[int, Mapping[str, object]]] = []
        for item in rows:
            chunk.append(item)
            if len(chunk) == IMPORT_CHUNK:
                imported += await self._import_chunk(org_id, app_id, chunk, source, rejected)
                if progress is not None:
                    progress(len(chunk))
                chunk = []
        if chunk:
            imported += await self._import_chunk(org_id, app_id, chunk, source, rejected)
            if progress is not None:
                progress(len(chunk))
        return ConsentImport(imported, rejected)

    async def _import_chunk(self, org_id: str, app_id: str,
                            chunk: list[tuple[int, Mapping[str, object]]], source: str,
                            rejected: list[tuple[int, str]]) -> int:
        now = self._clock.now()
        parsed: list[tuple[int, str | None, str | None, bool, str]] = []
        for line, row in chunk:
            try:
                if isinstance(row, UnreadableRow):
                    raise InvalidInput(row.reason)
                person = canonical_guid(str(row.get("user_id") or "").strip()) \
                    if row.get("user_id") else None
                email = str(row.get("email") or "").strip().casefold() or None
                if person is None and email is None:
                    raise InvalidInput("the row names nobody", field="user_id",
                                       fix="Give a user_id (the person's id) or an email.")
                said = str(row.get("source") or source).strip()[:MAX_SOURCE] or source
                parsed.append((line, person, email, _choice(row), said))
            except InvalidInput as exc:
                rejected.append((line, str(exc)))
        async with self._db.write() as conn:
            by_email = await store.ids_by_email(conn, org_id,
                                                [e for _, _, e, _, _ in parsed if e])
            known = await store.known_people(conn, org_id,
                                             [p for _, p, _, _, _ in parsed if p])
            rows: list[store.ConsentRow] = []
            for line, person, email, opted_in, said in parsed:
                found = person if person in known else by_email.get(email or "")
                if found is None:
                    rejected.append((line, f"no person of this organization has "
                                     f"{'id ' + person if person else 'email ' + str(email)}"))
                    continue
                rows.append(store.ConsentRow(app_id, found, opted_in, said, now))
            await store.upsert_consents(conn, org_id, rows)
            if any(not r.opted_in for r in rows):
                await store.save_settings(conn, org_id, {"opt_outs": True}, now)
        return len(rows)

    async def consent(self, org_id: str, app_id: str, person_id: str) -> ConsentRead:
        async with self._db.read() as conn:
            await require_app(conn, org_id, app_id)
            person_id = await require_person(conn, org_id, person_id)
            row = await store.consent(conn, app_id, person_id)
        return _consent(app_id, person_id, row)

    async def set_consent(self, org_id: str, app_id: str, person_id: str, *, opted_in: bool,
                          source: str) -> ConsentRead:
        source = source.strip()
        if not 0 < len(source) <= MAX_SOURCE:
            raise InvalidInput(f"source must be 1 to {MAX_SOURCE} characters", field="source",
                               fix="Say where the choice was made, e.g. \"app settings\" or "
                               "\"signup form\".")
        async with self._db.write() as conn:
            await require_app(conn, org_id, app_id)
            person_id = await require_person(conn, org_id, person_id)
            row = store.ConsentRow(app_id, person_id, opted_in, source, self._clock.now())
            await store.set_consent(conn, org_id, row)
            if not opted_in:  # fan-out now reads this org's consent (screening.OrgRules)
                await store.save_settings(conn, org_id, {"opt_outs": True}, row.at)
        return _consent(app_id, person_id, row)


def _consent(app_id: str, person_id: str, row: store.ConsentRow | None) -> ConsentRead:
    if row is None:
        return ConsentRead(app_id, person_id, None, None, None)
    return ConsentRead(app_id, person_id, row.opted_in, row.source, row.at.isoformat())
