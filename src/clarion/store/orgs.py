"""Queries of organizations and admin tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, literal, select, update

from clarion.domain.orgs import AdminToken, Org
from clarion.store import tables as t
from clarion.store.db import Conn

_O = t.orgs
_A = t.admin_tokens


async def insert_org(conn: Conn, *, org_id: str, name: str, now: datetime) -> None:
    await conn.execute(insert(_O).values(id=org_id, name=name, created_at=now))


async def exists(conn: Conn, org_id: str) -> bool:
    return await conn.scalar(select(literal(1)).where(_O.c.id == org_id)) is not None


async def get(conn: Conn, org_id: str) -> Org | None:
    row = (await conn.execute(select(_O.c.id, _O.c.name).where(_O.c.id == org_id))).first()
    return None if row is None else Org(id=row.id, name=row.name)


async def list_all(conn: Conn) -> list[Org]:
    rows = (await conn.execute(select(_O.c.id, _O.c.name).order_by(_O.c.created_at))).all()
    return [Org(id=r.id, name=r.name) for r in rows]


async def insert_admin_token(conn: Conn, *, token_id: str, org_id: str, token_hash: str,
                             name: str, now: datetime) -> None:
    await conn.execute(insert(_A).values(id=token_id, org_id=org_id, token_hash=token_hash,
                                         name=name, created_at=now))


async def org_of_admin_token(conn: Conn, token_hash: str) -> str | None:
    """The org of an active admin token, by the token's hash."""
    row = (await conn.execute(select(_A.c.org_id).where(
        _A.c.token_hash == token_hash, _A.c.revoked_at.is_(None)))).first()
    return None if row is None else str(row.org_id)


def _token(row: Any) -> AdminToken:
    return AdminToken(id=str(row.id), name=row.name, created_at=row.created_at,
                      revoked_at=row.revoked_at)


async def admin_tokens(conn: Conn, org_id: str) -> list[AdminToken]:
    rows = (await conn.execute(
        select(_A.c.id, _A.c.name, _A.c.created_at, _A.c.revoked_at)
        .where(_A.c.org_id == org_id).order_by(_A.c.created_at, _A.c.id))).all()
    return [_token(r) for r in rows]


async def admin_token(conn: Conn, org_id: str, token_id: str) -> AdminToken | None:
    row = (await conn.execute(
        select(_A.c.id, _A.c.name, _A.c.created_at, _A.c.revoked_at)
        .where(_A.c.id == token_id, _A.c.org_id == org_id))).first()
    return None if row is None else _token(row)


async def active_admin_tokens(conn: Conn, org_id: str) -> int:
    return int((await conn.execute(select(func.count()).select_from(_A).where(
        _A.c.org_id == org_id, _A.c.revoked_at.is_(None)))).scalar_one())


async def revoke_admin_token(conn: Conn, token_id: str, at: datetime) -> None:
    await conn.execute(update(_A).where(_A.c.id == token_id).values(revoked_at=at))
