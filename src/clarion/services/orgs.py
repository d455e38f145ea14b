"""Organizations and their admin tokens."""

from __future__ import annotations

import uuid

from clarion.clock import Clock
from clarion.crypto import hash_token, new_token
from clarion.domain.orgs import (
    ADMIN_TOKEN_PREFIX,
    AdminToken,
    AdminTokenCreated,
    Org,
    OrgCreated,
    org_name,
    token_name,
)
from clarion.errors import Conflict, NotFound, Unauthorized
from clarion.store import orgs as store
from clarion.store.db import Conn, Database


def org_not_found(org_id: str) -> NotFound:
    return NotFound(f"organization {org_id} does not exist",
                    fix="List organizations with `clarion orgs list`.")


async def require_org(conn: Conn, org_id: str) -> None:
    """NotFound naming the organization when it does not exist. Services call it where an
    answer would otherwise be empty or name something inside the org (an unknown app, person,
    token), so that a mistyped org id is reported as such, by the API and the CLI alike."""
    if not await store.exists(conn, org_id):
        raise org_not_found(org_id)


class Orgs:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def create(self, name: str) -> OrgCreated:
        name = org_name(name)
        org_id = str(uuid.uuid4())
        token = new_token(ADMIN_TOKEN_PREFIX)
        now = self._clock.now()
        async with self._db.write() as conn:
            await store.insert_org(conn, org_id=org_id, name=name, now=now)
            await store.insert_admin_token(conn, token_id=str(uuid.uuid4()), org_id=org_id,
                                           token_hash=hash_token(token), name="admin", now=now)
        return OrgCreated(id=org_id, name=name, admin_token=token)

    async def get(self, org_id: str) -> Org:
        async with self._db.read() as conn:
            org = await store.get(conn, org_id)
        if org is None:
            raise org_not_found(org_id)
        return org

    async def all(self) -> list[Org]:
        async with self._db.read() as conn:
            return await store.list_all(conn)

    async def authenticate_admin(self, token: str) -> str:
        """The org id an admin bearer token belongs to."""
        async with self._db.read() as conn:
            org_id = await store.org_of_admin_token(conn, hash_token(token))
        if org_id is None:
            raise Unauthorized("the admin token is unknown or revoked",
                               fix="Send `Authorization: Bearer <admin token>` with the token "
                               "printed by `clarion orgs create`, or make a new one with "
                               "`clarion orgs token --org ORG`.")
        return org_id

    async def new_admin_token(self, org_id: str, name: str = "admin") -> AdminTokenCreated:
        name = token_name(name)
        token = new_token(ADMIN_TOKEN_PREFIX)
        token_id = str(uuid.uuid4())
        async with self._db.write() as conn:
            await require_org(conn, org_id)
            await store.insert_admin_token(conn, token_id=token_id, org_id=org_id,
                                           token_hash=hash_token(token), name=name,
                                           now=self._clock.now())
        return AdminTokenCreated(id=token_id, name=name, token=token)

    async def admin_tokens(self, org_id: str) -> list[AdminToken]:
        async with self._db.read() as conn:
            await require_org(conn, org_id)
            return await store.admin_tokens(conn, org_id)

    async def revoke_admin_token(self, org_id: str, token_id: str, *,
                                 keep_one: bool = True) -> AdminToken:
        """Revoke one admin token of the org (at once: every request checks the database).

        With ``keep_one`` (the REST API) the org's last active token cannot be revoked, so the
        org is never locked out of its own API; the CLI, run by an operator, may."""
        async with self._db.write() as conn:
            found = await store.admin_token(conn, org_id, token_id)
            if found is None:
                await require_org(conn, org_id)
                raise NotFound(f"organization {org_id} has no admin token {token_id}",
                               fix="List the tokens with `clarion orgs tokens --org ORG` or "
                               "GET /v1/orgs/{org}/admin-tokens.")
            if found.revoked_at is not None:
                return found
            if keep_one and await store.active_admin_tokens(conn, org_id) <= 1:
                raise Conflict("this is the organization's last active admin token",
                               fix="Create another one first (`clarion orgs token --org "
                               "ORG`), then revoke this one.")
            revoked_at = self._clock.now()
            await store.revoke_admin_token(conn, token_id, revoked_at)
        return AdminToken(id=found.id, name=found.name, created_at=found.created_at,
                          revoked_at=revoked_at)
