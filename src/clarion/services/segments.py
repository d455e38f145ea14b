"""Segment use cases: save (filter parsed, references checked, cycles refused), read, size,
members a page at a time, membership checks, and static member imports.

``in_segment()`` references are resolved at read time into one SQL condition (a dynamic
segment's filter is inlined, a static one becomes an EXISTS on its member rows). A reference
cycle would make that endless, so it is refused when the segment is saved (400).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from clarion.clock import Clock
from clarion.domain import filters
from clarion.domain.people import canonical_guid, normalize_email
from clarion.domain.segments import MAX_NAME, ImportResult, SegmentRead, SegmentSize
from clarion.errors import Conflict, InvalidInput, NotFound
from clarion.ids import new_id
from clarion.services.orgs import require_org
from clarion.store import segments as store
from clarion.store.db import Conn, Database

MAX_PAGE = 10_000
MAX_LIST = 1000  # segments per listing page (one more is read to know if more follow)
SAMPLE = 10
IMPORT_CHUNK = 5_000
_ID_KEYS = ("id", "user_id", "userid", "contactid", "leadid", "person_id")


def _not_found(org_id: str, segment_id: str) -> NotFound:
    return NotFound(f"segment {segment_id} does not exist in organization {org_id}",
                    fix=f"List the segments: `clarion segments list --org {org_id}` "
                    f"(GET /v1/orgs/{org_id}/segments).")


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise InvalidInput("name must be a non-empty text", field="name",
                           fix=f"Give a name of 1 to {MAX_NAME} characters.")
    return value.strip()


def _text_id(value: str | UUID | None) -> str | None:
    return None if value is None else str(value).lower()


class Segments:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    # -- documents -----------------------------------------------------------------------

    async def create(self, org_id: str, data: Mapping[str, Any]) -> SegmentRead:
        kind = data.get("kind", "dynamic")
        if kind not in ("dynamic", "static"):
            raise InvalidInput(f"kind {kind!r} is not a segment kind", field="kind",
                               fix="Use dynamic (a filter) or static (imported members).")
        name = _name(data.get("name"))
        text = data.get("filter")
        if kind == "static" and text is not None:
            raise InvalidInput("a static segment has no filter", field="filter",
                               fix="Leave filter out and import members with POST "
                               ".../segments/{id}/members, or use kind dynamic.")
        if kind == "dynamic" and not isinstance(text, str):
            raise InvalidInput("a dynamic segment needs a filter", field="filter",
                               fix="Give a filter such as \"tier eq 'gold'\" (see "
                               "docs/segments.md).")
        segment_id = new_id()
        now = self._clock.now()
        async with self._db.write() as conn:
            await require_org(conn, org_id)
            if isinstance(text, str):
                await self._check_filter(conn, org_id, segment_id, text)
            return await store.insert_segment(conn, {
                "id": segment_id, "org_id": org_id, "name": name, "kind": kind,
                "filter": text, "created_at": now, "updated_at": now})

    async def replace(self, org_id: str, segment_id: str, data: Mapping[str, Any]
                      ) -> SegmentRead:
        """PUT: the new name and filter (a segment's kind cannot change)."""
        async with self._db.write() as conn:
            current = await self._require(conn, org_id, segment_id)
            kind = data.get("kind", current.kind)
            if kind != current.kind:
                raise InvalidInput(f"a segment's kind cannot change ({current.kind})",
                                   field="kind", fix="Create a new segment instead.")
            changes: dict[str, Any] = {"name": _name(data.get("name", current.name)),
                                       "updated_at": self._clock.now()}
            if current.kind == "dynamic":
                text = data.get("filter")
                if not isinstance(text, str):
                    raise InvalidInput("a dynamic segment needs a filter", field="filter",
                                       fix="Give the whole filter (PUT replaces it).")
                await self._check_filter(conn, org_id, current.id, text)
                changes["filter"] = text
            elif data.get("filter") is not None:
                raise InvalidInput("a static segment has no filter", field="filter",
                                   fix="Leave filter out.")
            await store.update_segment(conn, org_id, current.id, changes)
            updated = await store.get(conn, org_id, current.id)
        assert updated is not None
        return updated

    async def get(self, org_id: str, segment_id: str) -> SegmentRead:
        async with self._db.read() as conn:
            return await self._require(conn, org_id, segment_id)

    async def all(self, org_id: str, *, after: str | None = None,
                   limit: int = 100) -> list[SegmentRead]:
        async with self._db.read() as conn:
            await require_org(conn, org_id)
            return await store.page(conn, org_id, _text_id(after), max(1, min(limit, MAX_LIST + 1)))

    async def delete(self, org_id: str, segment_id: str) -> None:
        async with self._db.write() as conn:
            current = await self._require(conn, org_id, segment_id)
            users = [other for other, text in await store.dynamic_filters(conn, org_id)
                     if other != current.id and current.id in filters.segment_refs(
                         filters.parse(text))]
            if users:
                raise Conflict(f"segment {current.id} is used by segment(s) "
                               f"{', '.join(sorted(users))}",
                               fix="Change or delete those segments first.")
            await store.delete_segment(conn, org_id, current.id)

    # -- members -------------------------------------------------------------------------

    async def members(self, org_id: str, segment_id: str, after: str | UUID | None,
                      limit: int) -> list[str]:
        """Up to ``limit`` member ids after ``after`` in ascending id order (keyset: pass the
        last id of a page as ``after`` for the next). One bounded statement per call."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit {limit} is out of range", field="limit",
                               fix=f"Use 1 to {MAX_PAGE} and page on with after.")
        async with self._db.read() as conn:
            segment, where = await self._condition(conn, org_id, segment_id)
            return await store.member_ids(conn, org_id, segment, where, _text_id(after),
                                          limit)

    async def contains(self, org_id: str, segment_id: str,
                       person_ids: Iterable[str | UUID]) -> set[str]:
        """Those of ``person_ids`` (canonical lower-case GUIDs) who are members."""
        ids = sorted({str(p).lower() for p in person_ids})
        async with self._db.read() as conn:
            segment, where = await self._condition(conn, org_id, segment_id)
            return await store.members_among(conn, org_id, segment, where, ids)

    async def size(self, org_id: str, segment_id: str) -> SegmentSize:
        async with self._db.read() as conn:
            segment, where = await self._condition(conn, org_id, segment_id)
            count = await store.count(conn, org_id, segment, where)
            sample = await store.member_ids(conn, org_id, segment, where, None, SAMPLE)
        return SegmentSize(count=count, sample=sample)

    async def import_members(self, org_id: str, segment_id: str,
                             rows: Iterable[Mapping[str, Any]]) -> ImportResult:
        """Add the people named by ``rows`` (an id column, or an email) to a static segment,
        a chunk per write transaction."""
        async with self._db.read() as conn:
            segment = await self._require(conn, org_id, segment_id)
        if segment.kind != "static":
            raise InvalidInput(f"segment {segment.id} is dynamic: its members come from its "
                               "filter", fix="Import into a static segment (kind static).")
        result = ImportResult(added=0, already=0, unknown=[], unknown_count=0)
        chunk: list[Mapping[str, Any]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= IMPORT_CHUNK:
                result = await self._import_chunk(org_id, segment.id, chunk, result)
                chunk = []
        if chunk:
            result = await self._import_chunk(org_id, segment.id, chunk, result)
        return result

    async def _import_chunk(self, org_id: str, segment_id: str,
                            rows: list[Mapping[str, Any]], so_far: ImportResult
                            ) -> ImportResult:
        ids: list[str] = []
        emails: dict[str, str] = {}
        unknown: list[str] = []
        for row in rows:
            lowered = {str(k).strip().lower(): v for k, v in row.items()}
            given = next((lowered[k] for k in _ID_KEYS if lowered.get(k)), None)
            if given is not None:
                guid = canonical_guid(str(given).strip())
                if guid is None:
                    unknown.append(str(given))
                else:
                    ids.append(guid)
                continue
            email = lowered.get("email") or lowered.get("emailaddress1")
            if not email:
                unknown.append(str(dict(row))[:100])
                continue
            try:
                emails[normalize_email(str(email))] = str(email)
            except InvalidInput:
                unknown.append(str(email))
        async with self._db.write() as conn:
            by_email = await store.ids_by_email(conn, org_id, emails)
            unknown += [given for stored, given in emails.items() if stored not in by_email]
            wanted = sorted(set(ids) | set(by_email.values()))
            existing = await store.existing_people(conn, org_id, wanted)
            unknown += [i for i in wanted if i not in existing]
            people = [i for i in wanted if i in existing]
            added = await store.add_members(conn, segment_id, people)
        return ImportResult(added=so_far.added + added,
                            already=so_far.already + len(people) - added,
                            unknown=(so_far.unknown + unknown)[:100],
                            unknown_count=so_far.unknown_count + len(unknown))

    # -- helpers -------------------------------------------------------------------------

    async def _require(self, conn: Conn, org_id: str, segment_id: str) -> SegmentRead:
        guid = canonical_guid(str(segment_id))
        segment = None if guid is None else await store.get(conn, org_id, guid)
        if segment is None:
            await require_org(conn, org_id)
            raise _not_found(org_id, str(segment_id))
        return segment

    async def _condition(self, conn: Conn, org_id: str, segment_id: str | UUID
                         ) -> tuple[SegmentRead, Any]:
        segment = await self._require(conn, org_id, str(segment_id))
        if segment.kind == "static" or segment.filter is None:
            return segment, None
        node = filters.parse(segment.filter)
        resolved = await self._resolve(conn, org_id, node)
        return segment, store.condition(conn, org_id, node, resolved)

    async def _resolve(self, conn: Conn, org_id: str, node: filters.Filter
                       ) -> dict[str, store.Resolved]:
        """Every segment ``node`` reaches through ``in_segment()``, transitively."""
        out: dict[str, store.Resolved] = {}
        todo = filters.segment_refs(node)
        while todo:
            found = await store.get_many(conn, org_id, todo)
            todo = set()
            for seg in found:
                parsed = None if seg.filter is None else filters.parse(seg.filter)
                out[seg.id] = store.Resolved(seg.kind, parsed)
                if parsed is not None:
                    todo |= filters.segment_refs(parsed) - out.keys()
        return out

    async def _check_filter(self, conn: Conn, org_id: str, segment_id: str,
                            text: str) -> None:
        """Parse ``text``; its segments and apps must exist, and no reference may lead back
        to ``segment_id`` (a cycle could never be evaluated)."""
        node = filters.parse(text)
        refs = filters.segment_refs(node)
        if refs:
            known = {s.id for s in await store.get_many(conn, org_id, refs)}
            missing = sorted(refs - known)
            if missing:
                raise InvalidInput(f"in_segment('{missing[0]}') names no segment of this "
                                   "organization", field="filter",
                                   fix="Use the id of an existing segment (clarion segments "
                                   "list).")
        apps = filters.app_refs(node)
        if apps:
            missing = sorted(apps - await store.known_apps(conn, org_id, apps))
            if missing:
                raise InvalidInput(f"has_device('{missing[0]}') names no app of this "
                                   "organization", field="filter",
                                   fix="Use the id of one of the org's apps (clarion apps "
                                   "list).")
        graph = {sid: filters.segment_refs(filters.parse(ftext))
                 for sid, ftext in await store.dynamic_filters(conn, org_id)}
        graph[segment_id] = refs
        path = _cycle(graph, segment_id)
        if path:
            raise InvalidInput("the filter makes a cycle of segments: " + " -> ".join(path),
                               field="filter",
                               fix="A segment cannot contain itself, even through others; "
                               "remove one of these in_segment() references.")


def _cycle(graph: Mapping[str, set[str]], start: str) -> list[str] | None:
    """A path from ``start`` back to itself in ``graph``, if there is one."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in graph.get(node, set()):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None
