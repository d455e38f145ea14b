"""Queries of apps (public configuration halves, encrypted secrets, settings, credential
status) and their API tokens. Reads never select the ``secrets`` column except
``platform_config``, for the senders."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, literal, select, update

from clarion.domain.apps import ApiTokenInfo, ApiTokenRead, AppRead, AppSettings, CredentialStatus
from clarion.domain.outcomes import Platform
from clarion.store import tables as t
from clarion.store.db import Conn

_A = t.apps
_T = t.api_tokens
# Every column but ``secrets``: reads never even load the encrypted blob.
_PUBLIC_COLUMNS = [c for c in _A.c if c.name != "secrets"]


@dataclass(frozen=True, slots=True)
class StoredApp:
    """An app row as an update needs it: public halves, the encrypted secrets, settings."""

    id: str
    public: dict[Platform, dict[str, Any]]
    secrets: bytes | None
    settings: AppSettings
    credential_status: dict[str, Any]


def _active_tokens() -> Any:
    return (select(func.count()).select_from(_T)
            .where(_T.c.app_id == _A.c.id, _T.c.revoked_at.is_(None))
            .correlate(_A).scalar_subquery())


def _read(row: Any) -> AppRead:
    m = row._mapping
    return AppRead(
        id=m["id"], org_id=m["org_id"], name=m["name"],
        platforms={p: dict(m[p.value]) for p in Platform if m[p.value] is not None},
        settings=AppSettings.from_stored(m["settings"]),
        credential_status={Platform(k): CredentialStatus.from_stored(v)
                           for k, v in (m["credential_status"] or {}).items()
                           if k in set(Platform)},
        api_token_count=int(m["token_count"] or 0),
        created_at=m["created_at"], updated_at=m["updated_at"],
    )


async def insert_app(conn: Conn, *, app_id: str, org_id: str, name: str,
                     public: Mapping[Platform, dict[str, Any] | None], secrets: bytes,
                     settings: AppSettings, credential_status: dict[str, Any],
                     now: datetime) -> None:
    await conn.execute(insert(_A).values(
        id=app_id, org_id=org_id, name=name,
        **{p.value: public.get(p) for p in Platform},
        secrets=secrets, settings=settings.as_dict(), credential_status=credential_status,
        created_at=now, updated_at=now))


async def get(conn: Conn, app_id: str, org_id: str | None = None) -> AppRead | None:
    query = select(*_PUBLIC_COLUMNS, _active_tokens().label("token_count")).where(
        _A.c.id == app_id)
    if org_id is not None:
        query = query.where(_A.c.org_id == org_id)
    row = (await conn.execute(query)).first()
    return None if row is None else _read(row)


async def of_org(conn: Conn, org_id: str) -> list[AppRead]:
    rows = (await conn.execute(
        select(*_PUBLIC_COLUMNS, _active_tokens().label("token_count"))
        .where(_A.c.org_id == org_id).order_by(_A.c.created_at, _A.c.id))).all()
    return [_read(r) for r in rows]


async def exists(conn: Conn, org_id: str, app_id: str) -> bool:
    return await conn.scalar(select(literal(1)).where(
        _A.c.id == app_id, _A.c.org_id == org_id)) is not None


async def for_update(conn: Conn, org_id: str, app_id: str) -> StoredApp | None:
    """The app with its secrets, locked until the transaction ends (PostgreSQL)."""
    row = (await conn.execute(select(_A).where(
        _A.c.id == app_id, _A.c.org_id == org_id).with_for_update())).first()
    if row is None:
        return None
    m = row._mapping
    return StoredApp(id=row.id, public={p: dict(m[p.value]) for p in Platform
                                        if m[p.value] is not None},
                     secrets=row.secrets, settings=AppSettings.from_stored(row.settings),
                     credential_status=dict(row.credential_status or {}))


async def update_app(conn: Conn, app_id: str, values: Mapping[str, Any]) -> None:
    """Change columns of an app (``name``, a platform's public half, ``secrets``,
    ``settings``, ``credential_status``, ``updated_at``)."""
    await conn.execute(update(_A).where(_A.c.id == app_id).values(**values))


async def delete_app(conn: Conn, org_id: str, app_id: str) -> bool:
    """Delete the app and its API tokens (devices go by ON DELETE CASCADE)."""
    await conn.execute(delete(_T).where(_T.c.app_id == app_id, _T.c.org_id == org_id))
    done = await conn.execute(delete(_A).where(_A.c.id == app_id, _A.c.org_id == org_id))
    return bool(done.rowcount)


async def settings(conn: Conn, app_id: str) -> AppSettings | None:
    row = (await conn.execute(select(_A.c.settings).where(_A.c.id == app_id))).first()
    return None if row is None else AppSettings.from_stored(row.settings)


async def platform_config(conn: Conn, app_id: str, platform: Platform
                          ) -> tuple[bool, dict[str, Any] | None, bytes | None]:
    """(app exists, the platform's public half or None, the app's encrypted secrets)."""
    row = (await conn.execute(
        select(_A.c[platform.value], _A.c.secrets).where(_A.c.id == app_id))).first()
    if row is None:
        return False, None, None
    return True, row[0], row.secrets


async def credential_status(conn: Conn, app_id: str, *, lock: bool = False
                            ) -> tuple[dict[str, Any], set[Platform]] | None:
    """(credential status by platform name, the platforms configured), None if no app."""
    query = select(_A.c.credential_status, *(_A.c[p.value] for p in Platform)).where(
        _A.c.id == app_id)
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        return None
    configured = {p for p in Platform if row._mapping[p.value] is not None}
    return dict(row.credential_status or {}), configured


# --------------------------------------------------------------------------- API tokens


def _token(row: Any) -> ApiTokenRead:
    return ApiTokenRead(id=row.id, app_id=row.app_id, name=row.name, prefix=row.prefix,
                        created_at=row.created_at, revoked_at=row.revoked_at)


async def insert_api_token(conn: Conn, *, token_id: str, org_id: str, app_id: str,
                           token_hash: str, prefix: str, name: str, now: datetime) -> None:
    await conn.execute(insert(_T).values(
        id=token_id, org_id=org_id, app_id=app_id, token_hash=token_hash, prefix=prefix,
        name=name, created_at=now))


async def api_tokens(conn: Conn, org_id: str, app_id: str) -> list[ApiTokenRead]:
    rows = (await conn.execute(
        select(_T.c.id, _T.c.app_id, _T.c.name, _T.c.prefix, _T.c.created_at, _T.c.revoked_at)
        .where(_T.c.app_id == app_id, _T.c.org_id == org_id)
        .order_by(_T.c.created_at, _T.c.id))).all()
    return [_token(r) for r in rows]


async def api_token_revoked_at(conn: Conn, org_id: str, app_id: str, token_id: str
                               ) -> tuple[bool, datetime | None]:
    """(the token exists for this app, when it was revoked)."""
    row = (await conn.execute(select(_T.c.revoked_at).where(
        _T.c.id == token_id, _T.c.app_id == app_id, _T.c.org_id == org_id))).first()
    return (False, None) if row is None else (True, row.revoked_at)


async def revoke_api_token(conn: Conn, token_id: str, at: datetime) -> None:
    await conn.execute(update(_T).where(_T.c.id == token_id).values(revoked_at=at))


async def active_api_token(conn: Conn, token_hash: str, app_id: str) -> ApiTokenInfo | None:
    row = (await conn.execute(select(_T.c.id, _T.c.app_id, _T.c.org_id).where(
        _T.c.token_hash == token_hash, _T.c.app_id == app_id,
        _T.c.revoked_at.is_(None)))).first()
    return None if row is None else ApiTokenInfo(token_id=row.id, app_id=row.app_id,
                                                 org_id=row.org_id)


async def active_api_token_ids(conn: Conn, token_ids: set[str]) -> set[str]:
    """Those of ``token_ids`` not revoked."""
    return set((await conn.execute(select(_T.c.id).where(
        _T.c.id.in_(token_ids), _T.c.revoked_at.is_(None)))).scalars())
