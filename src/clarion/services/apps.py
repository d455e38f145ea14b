"""App configurations and their credentials, settings and developer information.

Each platform's configuration is split in two (``clarion.domain.credentials``): the public half
goes to the ``ios``/``android``/``web`` columns; every secret of the app goes, as one JSON
document, into the Fernet-encrypted ``secrets`` column. Reads never select ``secrets``; only
``load_platform_credentials`` (for the senders) decrypts it. API tokens live in
``clarion.services.api_tokens`` and are re-exported here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.clock import Clock
from clarion.config import Settings
from clarion.crypto import SecretBox, hash_token, new_token
from clarion.domain.apps import ApiTokenCreated as ApiTokenCreated
from clarion.domain.apps import ApiTokenInfo as ApiTokenInfo
from clarion.domain.apps import ApiTokenRead as ApiTokenRead
from clarion.domain.apps import AppCreated as AppCreated
from clarion.domain.apps import AppRead as AppRead
from clarion.domain.apps import AppSettings as AppSettings
from clarion.domain.apps import CredentialState, endpoints_for, example_registration, parse_document
from clarion.domain.apps import CredentialStatus as CredentialStatus
from clarion.domain.apps import DeveloperInfo as DeveloperInfo
from clarion.domain.credentials import check_token_uri
from clarion.domain.outcomes import Platform
from clarion.errors import NotFound
from clarion.services.api_tokens import SHOWN_PREFIX_LENGTH, TOKEN_PREFIX, aware
from clarion.services.api_tokens import ApiTokenCache as ApiTokenCache
from clarion.services.api_tokens import create_api_token as create_api_token
from clarion.services.api_tokens import list_api_tokens as list_api_tokens
from clarion.services.api_tokens import revoke_api_token as revoke_api_token
from clarion.store import tables as t
from clarion.store.db import Database

_A = t.apps
_T = t.api_tokens
# Every column but ``secrets``: reads never even load the encrypted blob.
_PUBLIC_COLUMNS = [c for c in _A.c if c.name != "secrets"]


def _active_tokens() -> Any:
    return (select(func.count()).select_from(_T)
            .where(_T.c.app_id == _A.c.id, _T.c.revoked_at.is_(None))
            .correlate(_A).scalar_subquery())


def _not_found(org_id: str, app_id: str) -> NotFound:
    return NotFound(f"app {app_id} does not exist in organization {org_id}",
                    fix=f"List the apps with `clarion apps list --org {org_id}` "
                    f"(GET /v1/orgs/{org_id}/apps).")


def _to_read(row: Row[Any, *tuple[Any, ...]]) -> AppRead:
    m = row._mapping
    return AppRead(
        id=m["id"], org_id=m["org_id"], name=m["name"],
        platforms={p: dict(m[p.value]) for p in Platform if m[p.value] is not None},
        settings=AppSettings.from_stored(m["settings"]),
        credential_status={Platform(k): CredentialStatus.from_stored(v)
                           for k, v in (m["credential_status"] or {}).items()
                           if k in set(Platform)},
        api_token_count=int(m["token_count"] or 0),
        created_at=aware(m["created_at"]), updated_at=aware(m["updated_at"]),
    )


async def _read_app(conn: AsyncConnection, org_id: str | None, app_id: str) -> AppRead:
    query = select(*_PUBLIC_COLUMNS, _active_tokens().label("token_count")).where(
        _A.c.id == app_id)
    if org_id is not None:
        query = query.where(_A.c.org_id == org_id)
    row = (await conn.execute(query)).first()
    if row is None:
        raise _not_found(org_id or "?", app_id)
    return _to_read(row)


def _check_outbound(changes: Any, fcm_url: str | None) -> None:
    """The URLs inside credentials that Clarion will connect to (FCM's ``token_uri``)."""
    android = changes.platforms.get(Platform.ANDROID)
    if android is not None:
        check_token_uri(str(android.public.get("token_uri", "")), fcm_url=fcm_url)


async def create_app(
    *, db: Database, box: SecretBox, clock: Clock, org_id: str, document: Mapping[str, Any],
    fcm_url: str | None = None,
) -> AppCreated:
    """Validate and store a new app with its first API token (returned once). ``fcm_url`` is
    the operator's CLARION_FCM_URL: a service account's token_uri may be on its origin."""
    now = clock.now()
    changes = parse_document(document, now=now)
    _check_outbound(changes, fcm_url)
    assert changes.name is not None
    assert changes.settings is not None
    configs = {p: cfg for p, cfg in changes.platforms.items() if cfg is not None}
    app_id = str(uuid.uuid4())
    token = new_token(TOKEN_PREFIX)
    status = {p.value: CredentialStatus.valid(now).as_dict() for p in configs}
    async with db.write() as conn:
        org = (await conn.execute(select(t.orgs.c.id).where(t.orgs.c.id == org_id))).first()
        if org is None:
            raise NotFound(f"organization {org_id} does not exist",
                           fix="List organizations with `clarion orgs list`.")
        await conn.execute(insert(_A).values(
            id=app_id, org_id=org_id, name=changes.name,
            ios=_public(configs, Platform.IOS), android=_public(configs, Platform.ANDROID),
            web=_public(configs, Platform.WEB),
            secrets=box.encrypt({p.value: cfg.secret for p, cfg in configs.items()}),
            settings=changes.settings.as_dict(), credential_status=status,
            created_at=now, updated_at=now))
        await conn.execute(insert(_T).values(
            id=str(uuid.uuid4()), org_id=org_id, app_id=app_id, token_hash=hash_token(token),
            prefix=token[:SHOWN_PREFIX_LENGTH], name="default", created_at=now))
        app = await _read_app(conn, org_id, app_id)
    return AppCreated(app=app, api_token=token)


def _public(configs: Mapping[Platform, Any], platform: Platform) -> dict[str, Any] | None:
    cfg = configs.get(platform)
    return None if cfg is None else dict(cfg.public)


async def update_app(
    *, db: Database, box: SecretBox, clock: Clock, org_id: str, app_id: str,
    document: Mapping[str, Any], fcm_url: str | None = None,
) -> AppRead:
    """Apply a partial document: named platforms are merged over the stored ones (write-only
    secrets left out are kept) or added, ``"ios": null`` removes iOS, settings are merged.
    ``fcm_url``: as for ``create_app``."""
    now = clock.now()
    async with db.write() as conn:
        row = (await conn.execute(
            select(_A).where(_A.c.id == app_id, _A.c.org_id == org_id).with_for_update()
        )).first()
        if row is None:
            raise _not_found(org_id, app_id)
        secrets = box.decrypt(row.secrets) if row.secrets else {}
        current = {p: {**(row._mapping[p.value] or {}), **secrets.get(p.value, {})}
                   for p in Platform if row._mapping[p.value] is not None}
        changes = parse_document(document, now=now, current=current,
                                 current_settings=AppSettings.from_stored(row.settings))
        _check_outbound(changes, fcm_url)
        values: dict[str, Any] = {"updated_at": now}
        status = dict(row.credential_status or {})
        for platform, cfg in changes.platforms.items():
            values[platform.value] = None if cfg is None else dict(cfg.public)
            if cfg is None:
                secrets.pop(platform.value, None)
                status.pop(platform.value, None)
            else:
                secrets[platform.value] = cfg.secret
                status[platform.value] = CredentialStatus.valid(now).as_dict()
        if changes.platforms:
            values["secrets"] = box.encrypt(secrets)
            values["credential_status"] = status
        if changes.name is not None:
            values["name"] = changes.name
        if changes.settings is not None:
            values["settings"] = changes.settings.as_dict()
        await conn.execute(update(_A).where(_A.c.id == app_id).values(**values))
        return await _read_app(conn, org_id, app_id)


async def get_app(*, db: Database, org_id: str, app_id: str) -> AppRead:
    """The app (public halves, settings, credential status, token count); NotFound if it is
    not an app of ``org_id``."""
    async with db.read() as conn:
        return await _read_app(conn, org_id, app_id)


async def list_apps(*, db: Database, org_id: str) -> list[AppRead]:
    async with db.read() as conn:
        rows = (await conn.execute(
            select(*_PUBLIC_COLUMNS, _active_tokens().label("token_count"))
            .where(_A.c.org_id == org_id).order_by(_A.c.created_at, _A.c.id)
        )).all()
    return [_to_read(r) for r in rows]


async def delete_app(*, db: Database, org_id: str, app_id: str) -> None:
    """Delete the app; its API tokens and devices go with it (ON DELETE CASCADE)."""
    async with db.write() as conn:
        await conn.execute(delete(_T).where(_T.c.app_id == app_id, _T.c.org_id == org_id))
        done = await conn.execute(delete(_A).where(_A.c.id == app_id, _A.c.org_id == org_id))
        if done.rowcount == 0:
            raise _not_found(org_id, app_id)


async def get_app_settings(*, db: Database, app_id: str) -> AppSettings:
    async with db.read() as conn:
        row = (await conn.execute(select(_A.c.settings).where(_A.c.id == app_id))).first()
    if row is None:
        raise NotFound(f"app {app_id} does not exist", fix="Check the app id.")
    return AppSettings.from_stored(row.settings)


async def load_platform_credentials(
    *, db: Database, box: SecretBox, app_id: str, platform: Platform
) -> Mapping[str, Any] | None:
    """The platform's full configuration for a sender: public half merged with the decrypted
    secret half. None if the app has no such platform; NotFound if the app does not exist."""
    column = _A.c[platform.value]
    async with db.read() as conn:
        row = (await conn.execute(
            select(column, _A.c.secrets).where(_A.c.id == app_id))).first()
    if row is None:
        raise NotFound(f"app {app_id} does not exist", fix="Check the app id.")
    public = row[0]
    if public is None:
        return None
    secrets = box.decrypt(row.secrets) if row.secrets else {}
    return {**public, **secrets.get(platform.value, {})}


async def credentials_invalid(*, db: Database, app_id: str, platform: Platform) -> str | None:
    """Why a provider refused the app's credentials for ``platform``; None when not refused.

    Sending pauses for that app and platform while this is set; updating the app's
    configuration clears it."""
    async with db.read() as conn:
        row = (await conn.execute(
            select(_A.c.credential_status).where(_A.c.id == app_id))).first()
    if row is None:
        return None
    status = (row.credential_status or {}).get(platform.value) or {}
    if status.get("state") == CredentialState.INVALID.value:
        return str(status.get("reason") or "credentials refused")
    return None


async def mark_credentials_invalid(
    *, db: Database, clock: Clock, app_id: str, platform: Platform, reason: str
) -> None:
    """Record that a provider refused the app's credentials (shown in the app's status until
    the configuration is updated). Nothing happens if the app or platform is gone by now."""
    async with db.write() as conn:
        row = (await conn.execute(
            select(_A.c.credential_status, _A.c[platform.value])
            .where(_A.c.id == app_id).with_for_update())).first()
        if row is None or row[1] is None:
            return
        status = dict(row.credential_status or {})
        status[platform.value] = CredentialStatus.invalid(clock.now(), reason[:1000]).as_dict()
        await conn.execute(update(_A).where(_A.c.id == app_id).values(credential_status=status))


async def developer_info(
    *, db: Database, settings: Settings, org_id: str, app_id: str
) -> DeveloperInfo:
    """What a token backend needs: public URL, ids, and the exact endpoints to call."""
    app = await get_app(db=db, org_id=org_id, app_id=app_id)
    platforms = [p for p in Platform if p in app.platforms]
    web = app.platforms.get(Platform.WEB)
    return DeveloperInfo(
        public_url=settings.public_url, org_id=org_id, app_id=app.id, app_name=app.name,
        platforms=platforms, endpoints=endpoints_for(settings.public_url, org_id),
        web_vapid_public_key=None if web is None else web.get("vapid_public_key"),
        api_token_count=app.api_token_count,
        example_registration=example_registration(app.id, platforms),
    )
