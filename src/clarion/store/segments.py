"""Queries of segments: their rows, static members, and filters compiled to SQL.

A filter (``clarion.domain.filters``) becomes one WHERE clause over ``people``, on SQLite with
``json_type``/``json_extract`` and on PostgreSQL with ``json_typeof``/``->>``. Comparisons are
typed exactly as ``filter_evaluation.evaluate`` types them (a property test checks that the two
agree): each attribute value is read through
``CASE WHEN <its JSON type> = <the literal's> THEN …``, so text never compares with a number,
and every leaf is wrapped in ``COALESCE(…, false)``, so a missing value gives false rather
than SQL's NULL (which would make ``not`` lie). Text orders by code point on both databases
(``COLLATE "C"`` on PostgreSQL).

Members are read in person-id order, a page at a time (``WHERE id > :after ORDER BY id LIMIT
n``): a segment of millions is never loaded whole.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    String,
    and_,
    case,
    cast,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    true,
    update,
)

from clarion.domain import filters as f
from clarion.domain.segments import SegmentRead
from clarion.store import tables as t
from clarion.store.db import Conn

_P = t.people.c
_S = t.segments.c
_M = t.segment_members.c
CHUNK = 5_000  # ids per statement in membership checks and member inserts
_COLUMNS = {"first_name": _P.first_name, "last_name": _P.last_name, "email": _P.email,
            "phone": _P.phone, "time_zone": _P.time_zone, "locale": _P.locale,
            "kind": _P.kind, "created_at": _P.created_at}


@dataclass(frozen=True, slots=True)
class Resolved:
    """A segment an ``in_segment()`` refers to: static (its member rows) or dynamic (its
    parsed filter, inlined)."""

    kind: str
    filter: f.Filter | None


def _segment(row: Mapping[Any, Any]) -> SegmentRead:
    return SegmentRead(id=row["id"], name=row["name"], kind=row["kind"], filter=row["filter"],
                       created_at=row["created_at"], updated_at=row["updated_at"])


class _Compiler:
    def __init__(self, dialect: str, org_id: str, resolved: Mapping[str, Resolved]) -> None:
        self.pg = dialect == "postgresql"
        self.org_id = org_id
        self.resolved = resolved

    def compile(self, node: f.Filter) -> ColumnElement[bool]:
        if isinstance(node, f.And):
            return and_(*(self.compile(item) for item in node.items))
        if isinstance(node, f.Or):
            return or_(*(self.compile(item) for item in node.items))
        if isinstance(node, f.Not):
            return not_(self.compile(node.item))
        if isinstance(node, f.HasDevice):
            d = t.devices.c
            return exists().where(d.app_id == node.app_id, d.person_id == _P.id,
                                  d.state == "active", d.org_id == self.org_id)
        if isinstance(node, f.InSegment):
            return self.segment(node.segment_id)
        if isinstance(node, f.In):
            return or_(*(self.compare(node.field, "eq", v) for v in node.values))
        if isinstance(node, f.TextMatch):
            return func.coalesce(self.text_match(node), false())
        if node.op == "ne":
            return not_(self.compare(node.field, "eq", node.value))
        return self.compare(node.field, node.op, node.value)

    def segment(self, segment_id: str) -> ColumnElement[bool]:
        target = self.resolved.get(segment_id)
        if target is None:  # deleted since: nobody is a member of nothing
            return false()
        if target.kind == "static" or target.filter is None:
            return exists().where(_M.segment_id == segment_id, _M.person_id == _P.id)
        return self.compile(target.filter)  # the service checked there is no cycle

    # -- values --------------------------------------------------------------------------

    def typed(self, field: str, kind: str) -> ColumnElement[Any] | None:
        """``field``'s value when it has the literal's type ``kind``, else NULL."""
        if field in _COLUMNS:
            if (kind == "datetime") != (field == "created_at"):
                return None  # the parser makes this unreachable; typed all the same
            return _COLUMNS[field]
        if kind == "datetime":
            return None
        if self.pg:
            node = _P.attributes[field]
            typ = func.json_typeof(node)
            text = node.as_string()
            if kind == "text":
                return case((typ == "string", text.collate("C")))
            if kind == "number":
                return case((typ == "number", cast(text, Float)))
            return case((typ == "boolean", text))
        path = f"$.{field}"
        jtyp = func.json_type(_P.attributes, path)
        value = func.json_extract(_P.attributes, path)
        if kind == "text":
            return case((jtyp == "text", value))
        if kind == "number":
            return case((jtyp.in_(("integer", "real")), value))
        return case((jtyp.in_(("true", "false")), jtyp))

    def compare(self, field: str, op: str, value: f.Value) -> ColumnElement[bool]:
        if value is None:
            if field in _COLUMNS:
                return _COLUMNS[field].is_(None)
            if self.pg:
                typ = func.json_typeof(_P.attributes[field])
            else:
                typ = func.json_type(_P.attributes, f"$.{field}")
            return func.coalesce(typ == "null", true())  # missing (NULL) is null
        kind = {bool: "bool", int: "number", float: "number", str: "text",
                datetime: "datetime"}[type(value)]
        column = self.typed(field, kind)
        if column is None:
            return false()
        operand: Any
        if kind == "bool":
            operand = "true" if value else "false"
        elif kind == "number":
            operand = cast(literal(float(value)), Float)  # type: ignore[arg-type]
        elif kind == "text":
            operand = literal(value, String)
            if self.pg:
                operand = operand.collate("C")
        else:
            operand = value
        expr = {"eq": column == operand, "gt": column > operand, "ge": column >= operand,
                "lt": column < operand, "le": column <= operand}[op]
        return func.coalesce(expr, false())

    def text_match(self, node: f.TextMatch) -> ColumnElement[bool]:
        column = self.typed(node.field, "text")
        if column is None:
            return false()
        needle = literal(node.value, String)
        n = len(node.value)
        if node.function == "contains":
            found = func.strpos(column, needle) if self.pg else func.instr(column, needle)
            return found > 0
        if node.function == "startswith":
            return func.substr(column, 1, n) == needle
        if self.pg:
            return func.right(column, n) == needle
        return and_(func.length(column) >= n,
                    func.substr(column, func.length(column) - n + 1) == needle)


def condition(conn: Conn, org_id: str, node: f.Filter,
              resolved: Mapping[str, Resolved]) -> ColumnElement[bool]:
    """The SQL of ``node`` over ``people`` (``resolved``: every segment it reaches)."""
    return _Compiler(conn.dialect.name, org_id, resolved).compile(node)


# --- segment rows ----------------------------------------------------------------------------

async def insert_segment(conn: Conn, row: Mapping[str, Any]) -> SegmentRead:
    await conn.execute(insert(t.segments).values(**row))
    return _segment(row)


async def get(conn: Conn, org_id: str, segment_id: str) -> SegmentRead | None:
    row = (await conn.execute(select(t.segments).where(
        _S.org_id == org_id, _S.id == segment_id))).mappings().first()
    return None if row is None else _segment(row)


async def get_many(conn: Conn, org_id: str, ids: Collection[str]) -> list[SegmentRead]:
    rows = (await conn.execute(select(t.segments).where(
        _S.org_id == org_id, _S.id.in_(list(ids))))).mappings().all()
    return [_segment(r) for r in rows]


async def page(conn: Conn, org_id: str, after: str | None, limit: int) -> list[SegmentRead]:
    query = select(t.segments).where(_S.org_id == org_id)
    if after is not None:
        query = query.where(_S.id > after)
    rows = (await conn.execute(query.order_by(_S.id).limit(limit))).mappings().all()
    return [_segment(r) for r in rows]


async def update_segment(conn: Conn, org_id: str, segment_id: str,
                         changes: Mapping[str, Any]) -> None:
    await conn.execute(update(t.segments).where(_S.org_id == org_id, _S.id == segment_id)
                       .values(**changes))


async def delete_segment(conn: Conn, org_id: str, segment_id: str) -> bool:
    # Members first: SQLite enforces no foreign keys unless asked, so no cascade is relied on.
    await conn.execute(delete(t.segment_members).where(_M.segment_id == segment_id))
    result = await conn.execute(delete(t.segments).where(
        _S.org_id == org_id, _S.id == segment_id))
    return bool(result.rowcount)


async def dynamic_filters(conn: Conn, org_id: str) -> list[tuple[str, str]]:
    """``(id, filter)`` of every dynamic segment of the org (reference checks at save)."""
    rows = await conn.execute(select(_S.id, _S.filter).where(
        _S.org_id == org_id, _S.kind == "dynamic"))
    return [(r.id, r.filter or "") for r in rows]


# --- members ---------------------------------------------------------------------------------

async def member_ids(conn: Conn, org_id: str, segment: SegmentRead,
                     where: ColumnElement[bool] | None, after: str | None,
                     limit: int) -> list[str]:
    """Up to ``limit`` member ids after ``after``, in id order: one bounded statement."""
    if segment.kind == "static":
        query = (select(_M.person_id).join(t.people, and_(_P.org_id == org_id,
                                                           _P.id == _M.person_id))
                 .where(_M.segment_id == segment.id))
        if after is not None:
            query = query.where(_M.person_id > after)
        query = query.order_by(_M.person_id)
    else:
        query = select(_P.id).where(_P.org_id == org_id, where if where is not None else true())
        if after is not None:
            query = query.where(_P.id > after)
        query = query.order_by(_P.id)
    return list((await conn.execute(query.limit(limit))).scalars().all())


async def count(conn: Conn, org_id: str, segment: SegmentRead,
                where: ColumnElement[bool] | None) -> int:
    if segment.kind == "static":
        query = (select(func.count()).select_from(t.segment_members)
                 .join(t.people, and_(_P.org_id == org_id, _P.id == _M.person_id))
                 .where(_M.segment_id == segment.id))
    else:
        query = select(func.count()).select_from(t.people).where(
            _P.org_id == org_id, where if where is not None else true())
    return int(await conn.scalar(query) or 0)


async def members_among(conn: Conn, org_id: str, segment: SegmentRead,
                        where: ColumnElement[bool] | None, ids: Sequence[str]) -> set[str]:
    """Those of ``ids`` who are members: one statement per ``CHUNK`` ids."""
    found: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        chunk = list(ids[start:start + CHUNK])
        if segment.kind == "static":
            query = (select(_M.person_id).join(t.people, and_(_P.org_id == org_id,
                                                               _P.id == _M.person_id))
                     .where(_M.segment_id == segment.id, _M.person_id.in_(chunk)))
        else:
            query = select(_P.id).where(_P.org_id == org_id, _P.id.in_(chunk),
                                        where if where is not None else true())
        found.update((await conn.execute(query)).scalars().all())
    return found


async def add_members(conn: Conn, segment_id: str, person_ids: Sequence[str]) -> int:
    """Add people to a static segment; those already in it are skipped. The number added."""
    added = 0
    for start in range(0, len(person_ids), CHUNK):
        chunk = sorted(set(person_ids[start:start + CHUNK]))
        present = set((await conn.execute(select(_M.person_id).where(
            _M.segment_id == segment_id, _M.person_id.in_(chunk)))).scalars().all())
        new = [{"segment_id": segment_id, "person_id": p} for p in chunk if p not in present]
        if new:
            await conn.execute(insert(t.segment_members), new)
            added += len(new)
    return added


async def ids_by_email(conn: Conn, org_id: str, emails: Collection[str]) -> dict[str, str]:
    """``{email: person id}`` for the emails (stored form) of people of the org."""
    keys = list(emails)
    out: dict[str, str] = {}
    for start in range(0, len(keys), CHUNK):
        rows = await conn.execute(select(_P.email, _P.id).where(
            _P.org_id == org_id, _P.email.in_(keys[start:start + CHUNK])).order_by(_P.id))
        for row in rows:
            out.setdefault(row.email, row.id)
    return out


async def existing_people(conn: Conn, org_id: str, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        found.update((await conn.execute(select(_P.id).where(
            _P.org_id == org_id, _P.id.in_(list(ids[start:start + CHUNK]))))).scalars().all())
    return found


async def known_apps(conn: Conn, org_id: str, ids: Collection[str]) -> set[str]:
    a = t.apps.c
    rows = await conn.execute(select(a.id).where(a.org_id == org_id, a.id.in_(list(ids))))
    return set(rows.scalars().all())
