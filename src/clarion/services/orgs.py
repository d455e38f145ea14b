"""Organizations and their admin tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import insert, select

from clarion.clock import Clock
from clarion.crypto import hash_token, new_token
from clarion.errors import InvalidInput, NotFound, Unauthorized
from clarion.store import tables as t
from clarion.store.db import Database


@dataclass(frozen=True)
class OrgCreated:
    id: str
    name: str
    admin_token: str


@dataclass(frozen=True)
class Org:
    id: str
    name: str


async def create_org(*, db: Database, clock: Clock, name: str) -> OrgCreated:
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("an organization needs a name of 1 to 200 characters",
                           fix="Pass --name with a non-empty name.", field="name")
    org_id = str(uuid.uuid4())
    token = new_token("clr_adm")
    now = clock.now()
    async with db.write() as conn:
        await conn.execute(insert(t.orgs).values(id=org_id, name=name, created_at=now))
        await conn.execute(insert(t.admin_tokens).values(
            id=str(uuid.uuid4()), org_id=org_id, token_hash=hash_token(token), name="admin",
            created_at=now))
    return OrgCreated(id=org_id, name=name, admin_token=token)


async def get_org(*, db: Database, org_id: str) -> Org:
    async with db.read() as conn:
        row = (await conn.execute(select(t.orgs).where(t.orgs.c.id == org_id))).first()
    if row is None:
        raise NotFound(f"organization {org_id} does not exist",
                       fix="List organizations with `clarion orgs list`.")
    return Org(id=row.id, name=row.name)


async def list_orgs(*, db: Database) -> list[Org]:
    async with db.read() as conn:
        rows = (await conn.execute(select(t.orgs).order_by(t.orgs.c.created_at))).all()
    return [Org(id=r.id, name=r.name) for r in rows]


async def authenticate_admin(*, db: Database, token: str) -> str:
    """The org id an admin bearer token belongs to."""
    async with db.read() as conn:
        row = (await conn.execute(
            select(t.admin_tokens.c.org_id).where(
                t.admin_tokens.c.token_hash == hash_token(token),
                t.admin_tokens.c.revoked_at.is_(None),
            )
        )).first()
    if row is None:
        raise Unauthorized("the admin token is unknown or revoked",
                           fix="Send `Authorization: Bearer <admin token>` with the token printed "
                           "by `clarion orgs create`, or make a new one with "
                           "`clarion orgs token --org ORG`.")
    return str(row.org_id)


async def new_admin_token(*, db: Database, clock: Clock, org_id: str) -> str:
    await get_org(db=db, org_id=org_id)
    token = new_token("clr_adm")
    async with db.write() as conn:
        await conn.execute(insert(t.admin_tokens).values(
            id=str(uuid.uuid4()), org_id=org_id, token_hash=hash_token(token), name="admin",
            created_at=clock.now()))
    return token
