"""Organizations and their admin tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update

from clarion.clock import Clock
from clarion.crypto import hash_token, new_token
from clarion.errors import Conflict, InvalidInput, NotFound, Unauthorized
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


@dataclass(frozen=True)
class AdminToken:
    """An admin token as listed: never its value (only its hash is stored)."""

    id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class AdminTokenCreated:
    id: str
    name: str
    token: str


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


def _token_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("an admin token needs a name of 1 to 200 characters",
                           fix="Name it after who or what uses it, e.g. --name ci-deploy.",
                           field="name")
    return name


async def new_admin_token(*, db: Database, clock: Clock, org_id: str,
                          name: str = "admin") -> AdminTokenCreated:
    await get_org(db=db, org_id=org_id)
    token = new_token("clr_adm")
    token_id = str(uuid.uuid4())
    name = _token_name(name)
    async with db.write() as conn:
        await conn.execute(insert(t.admin_tokens).values(
            id=token_id, org_id=org_id, token_hash=hash_token(token), name=name,
            created_at=clock.now()))
    return AdminTokenCreated(id=token_id, name=name, token=token)


async def list_admin_tokens(*, db: Database, org_id: str) -> list[AdminToken]:
    await get_org(db=db, org_id=org_id)
    a = t.admin_tokens
    async with db.read() as conn:
        rows = (await conn.execute(
            select(a.c.id, a.c.name, a.c.created_at, a.c.revoked_at)
            .where(a.c.org_id == org_id).order_by(a.c.created_at, a.c.id))).all()
    return [AdminToken(id=str(r.id), name=r.name, created_at=r.created_at,
                       revoked_at=r.revoked_at) for r in rows]


async def revoke_admin_token(*, db: Database, clock: Clock, org_id: str, token_id: str,
                             keep_one: bool = True) -> AdminToken:
    """Revoke one admin token of the org (at once: every request checks the database).

    With ``keep_one`` (the REST API) the org's last active token cannot be revoked, so the
    org is never locked out of its own API; the CLI, run by an operator, may."""
    a = t.admin_tokens
    async with db.write() as conn:
        row = (await conn.execute(select(a).where(
            a.c.id == token_id, a.c.org_id == org_id))).first()
        if row is None:
            raise NotFound(f"organization {org_id} has no admin token {token_id}",
                           fix="List the tokens with `clarion orgs tokens --org ORG` or "
                           "GET /v1/orgs/{org}/admin-tokens.")
        revoked_at = row.revoked_at
        if revoked_at is None:
            if keep_one:
                active = (await conn.execute(select(func.count()).select_from(a).where(
                    a.c.org_id == org_id, a.c.revoked_at.is_(None)))).scalar_one()
                if active <= 1:
                    raise Conflict("this is the organization's last active admin token",
                                   fix="Create another one first (`clarion orgs token --org "
                                   "ORG`), then revoke this one.")
            revoked_at = clock.now()
            await conn.execute(update(a).where(a.c.id == token_id).values(revoked_at=revoked_at))
    return AdminToken(id=str(row.id), name=row.name, created_at=row.created_at,
                      revoked_at=revoked_at)
