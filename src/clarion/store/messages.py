"""Queries of push messages (designed, personalised messages) and of the per-person messages
of personalised sends. Every read of people or rendered messages is one statement per chunk of
ids, never one per person."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from clarion.domain.push_messages import PersonFacts
from clarion.store import tables as t
from clarion.store.bulk import DriverMany
from clarion.store.db import Conn
from clarion.store.sends import id_values

_M = t.push_messages
_SM = t.send_messages
_P = t.people.c
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class MessageRow:
    id: str
    org_id: str
    app_id: str
    name: str
    document: dict[str, Any]
    created_at: datetime
    updated_at: datetime


def _row(r: Any) -> MessageRow:
    return MessageRow(id=r.id, org_id=r.org_id, app_id=r.app_id, name=r.name,
                      document=dict(r.document), created_at=r.created_at,
                      updated_at=r.updated_at)


async def insert_message(conn: Conn, row: Mapping[str, Any]) -> None:
    await conn.execute(insert(_M).values(**row))


async def get(conn: Conn, org_id: str, message_id: str) -> MessageRow | None:
    r = (await conn.execute(select(_M).where(_M.c.org_id == org_id,
                                             _M.c.id == message_id))).first()
    return None if r is None else _row(r)


async def of_org(conn: Conn, org_id: str, *, after: str | None = None,
                 limit: int = 1000) -> list[MessageRow]:
    """The org's messages by id (keyset pages: ``after`` = the last id of the previous one)."""
    query = select(_M).where(_M.c.org_id == org_id)
    if after is not None:
        query = query.where(_M.c.id > after)
    return [_row(r) for r in (await conn.execute(query.order_by(_M.c.id).limit(limit))).all()]


async def replace(conn: Conn, org_id: str, message_id: str, *, app_id: str, name: str,
                  document: Mapping[str, Any], now: datetime) -> bool:
    done = await conn.execute(update(_M).where(_M.c.org_id == org_id, _M.c.id == message_id)
                              .values(app_id=app_id, name=name, document=dict(document),
                                      updated_at=now))
    return bool(done.rowcount)


async def delete_message(conn: Conn, org_id: str, message_id: str) -> bool:
    done = await conn.execute(delete(_M).where(_M.c.org_id == org_id, _M.c.id == message_id))
    return bool(done.rowcount)


# ------------------------------------------------------------------ personalised sends

async def people_facts(conn: Conn, org_id: str, ids: Sequence[str]) -> dict[str, PersonFacts]:
    """What templates read of these people, by id (one statement for the lot: the ids go as
    one parameter); people that no longer exist are absent."""
    if not ids:
        return {}
    given = id_values(conn, ids)
    rows = (await conn.execute(
        select(_P.id, _P.kind, _P.email, _P.phone, _P.first_name, _P.last_name, _P.time_zone,
               _P.locale, _P.attributes)
        .where(_P.org_id == org_id, _P.id.in_(select(given.c.value))))).all()
    return {r.id: PersonFacts(id=r.id, kind=r.kind, email=r.email, phone=r.phone,
                              first_name=r.first_name, last_name=r.last_name,
                              time_zone=r.time_zone, locale=r.locale,
                              attributes=dict(r.attributes or {})) for r in rows}


# A re-run fan-out page finds its rows there already.
_INSERT_SEND_MESSAGES = DriverMany(
    lambda d: (postgresql if d.name == "postgresql" else sqlite).insert(_SM)
    .on_conflict_do_nothing(index_elements=["send_id", "person_id"]),
    ("send_id", "person_id", "message"), column_keys=("send_id", "person_id", "message"))


async def insert_send_messages(conn: Conn, rows: Sequence[tuple[str, str, dict[str, Any]]]
                               ) -> None:
    """(send id, person id, message document) rows; existing pairs are kept."""
    if rows:
        await _INSERT_SEND_MESSAGES.run(conn, rows)


async def send_messages(conn: Conn, pairs: Sequence[tuple[str, str]]
                        ) -> dict[tuple[str, str], dict[str, Any]]:
    """The rendered messages of (send id, person id) pairs, by pair."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    unique = sorted(set(pairs))
    for i in range(0, len(unique), _CHUNK):
        chunk = unique[i:i + _CHUNK]
        for r in (await conn.execute(select(_SM.c.send_id, _SM.c.person_id, _SM.c.message)
                                     .where(tuple_(_SM.c.send_id, _SM.c.person_id)
                                            .in_(chunk)))).all():
            out[(r.send_id, r.person_id)] = dict(r.message)
    return out
