"""App configurations, their API tokens, credentials, settings and developer information.

Each platform's configuration is split in two (``clarion.domain.credentials``): the public half
goes to the ``ios``/``android``/``web`` columns; every secret of the app goes, as one JSON
document, into the Fernet-encrypted ``secrets`` column. Reads never select ``secrets``; only
``platform_credentials`` (for the senders) decrypts it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from clarion.clock import Clock
from clarion.config import Settings
from clarion.crypto import SecretBox, hash_token, new_token
from clarion.domain.apps import (
    ApiTokenCreated,
    ApiTokenRead,
    AppChanges,
    AppCreated,
    AppRead,
    AppSettings,
    CredentialState,
    CredentialStatus,
    DeveloperInfo,
    api_token_name,
    endpoints_for,
    example_registration,
    parse_document,
)
from clarion.domain.credentials import check_token_uri
from clarion.domain.outcomes import Platform
from clarion.errors import NotFound
from clarion.services.api_tokens import SHOWN_PREFIX_LENGTH, TOKEN_PREFIX, ApiTokenCache
from clarion.services.orgs import require_org
from clarion.store import apps as store
from clarion.store.db import Conn, Database


def app_not_found(org_id: str, app_id: str, *, field: str | None = None) -> NotFound:
    return NotFound(f"app {app_id} does not exist in organization {org_id}", field=field,
                    fix=f"List the apps with `clarion apps list --org {org_id}` "
                    f"(GET /v1/orgs/{org_id}/apps).")


async def missing_app(conn: Conn, org_id: str, app_id: str, *,
                      field: str | None = None) -> NotFound:
    """The error for an app that is not one of the org's: the org's own absence first (a
    mistyped org id makes every app unknown; say which id is wrong)."""
    await require_org(conn, org_id)
    return app_not_found(org_id, app_id, field=field)


async def require_app(conn: Conn, org_id: str, app_id: str, *,
                      field: str | None = None) -> None:
    if not await store.exists(conn, org_id, app_id):
        raise await missing_app(conn, org_id, app_id, field=field)


def _check_outbound(changes: AppChanges, fcm_url: str | None) -> None:
    """The URLs inside credentials that Clarion will connect to (FCM's ``token_uri``): on
    Google's token endpoint, or the operator's CLARION_FCM_URL origin (an emulator)."""
    android = changes.platforms.get(Platform.ANDROID)
    if android is not None:
        check_token_uri(str(android.public.get("token_uri", "")), fcm_url=fcm_url)


def _public(configs: Mapping[Platform, Any]) -> dict[Platform, dict[str, Any] | None]:
    return {p: None if cfg is None else dict(cfg.public) for p, cfg in configs.items()}


class Apps:
    def __init__(self, db: Database, box: SecretBox, clock: Clock, settings: Settings,
                 tokens: ApiTokenCache) -> None:
        self._db = db
        self._box = box
        self._clock = clock
        self._settings = settings
        self.tokens = tokens  # verifies API tokens (device registration); revocations clear it

    async def create(self, org_id: str, document: Mapping[str, Any]) -> AppCreated:
        """Validate and store a new app with its first API token (returned once)."""
        now = self._clock.now()
        changes = parse_document(document, now=now)
        _check_outbound(changes, self._settings.fcm_url)
        assert changes.name is not None
        assert changes.settings is not None
        configs = {p: cfg for p, cfg in changes.platforms.items() if cfg is not None}
        app_id = str(uuid.uuid4())
        token = new_token(TOKEN_PREFIX)
        async with self._db.write() as conn:
            await require_org(conn, org_id)
            await store.insert_app(
                conn, app_id=app_id, org_id=org_id, name=changes.name, public=_public(configs),
                secrets=self._box.encrypt({p.value: cfg.secret for p, cfg in configs.items()}),
                settings=changes.settings,
                credential_status={p.value: CredentialStatus.valid(now).as_dict()
                                   for p in configs},
                now=now)
            await store.insert_api_token(
                conn, token_id=str(uuid.uuid4()), org_id=org_id, app_id=app_id,
                token_hash=hash_token(token), prefix=token[:SHOWN_PREFIX_LENGTH],
                name="default", now=now)
            app = await store.get(conn, app_id, org_id)
        assert app is not None
        return AppCreated(app=app, api_token=token)

    async def update(self, org_id: str, app_id: str, document: Mapping[str, Any]) -> AppRead:
        """Apply a partial document: named platforms are merged over the stored ones (write-only
        secrets left out are kept) or added, ``"ios": null`` removes iOS, settings are merged."""
        now = self._clock.now()
        async with self._db.write() as conn:
            row = await store.for_update(conn, org_id, app_id)
            if row is None:
                raise await missing_app(conn, org_id, app_id)
            secrets = self._box.decrypt(row.secrets) if row.secrets else {}
            current = {p: {**public, **secrets.get(p.value, {})}
                       for p, public in row.public.items()}
            changes = parse_document(document, now=now, current=current,
                                     current_settings=row.settings)
            _check_outbound(changes, self._settings.fcm_url)
            values: dict[str, Any] = {"updated_at": now}
            status = row.credential_status
            for platform, cfg in changes.platforms.items():
                values[platform.value] = None if cfg is None else dict(cfg.public)
                if cfg is None:
                    secrets.pop(platform.value, None)
                    status.pop(platform.value, None)
                else:
                    secrets[platform.value] = cfg.secret
                    status[platform.value] = CredentialStatus.valid(now).as_dict()
            if changes.platforms:
                values["secrets"] = self._box.encrypt(secrets)
                values["credential_status"] = status
            if changes.name is not None:
                values["name"] = changes.name
            if changes.settings is not None:
                values["settings"] = changes.settings.as_dict()
            await store.update_app(conn, app_id, values)
            app = await store.get(conn, app_id, org_id)
        assert app is not None
        return app

    async def get(self, org_id: str, app_id: str) -> AppRead:
        """The app (public halves, settings, credential status, token count); NotFound if it
        is not an app of ``org_id``."""
        async with self._db.read() as conn:
            app = await store.get(conn, app_id, org_id)
            if app is None:
                raise await missing_app(conn, org_id, app_id)
        return app

    async def of_org(self, org_id: str) -> list[AppRead]:
        async with self._db.read() as conn:
            apps = await store.of_org(conn, org_id)
            if not apps:
                await require_org(conn, org_id)
        return apps

    async def delete(self, org_id: str, app_id: str) -> None:
        """Delete the app; its API tokens and devices go with it."""
        async with self._db.write() as conn:
            if not await store.delete_app(conn, org_id, app_id):
                raise await missing_app(conn, org_id, app_id)
        self.tokens.invalidate()

    async def settings(self, app_id: str) -> AppSettings:
        async with self._db.read() as conn:
            found = await store.settings(conn, app_id)
        if found is None:
            raise NotFound(f"app {app_id} does not exist", fix="Check the app id.")
        return found

    async def platform_credentials(self, app_id: str, platform: Platform
                                   ) -> Mapping[str, Any] | None:
        """The platform's full configuration for a sender: public half merged with the
        decrypted secret half. None if the app has no such platform; NotFound if the app
        does not exist."""
        async with self._db.read() as conn:
            exists, public, secrets = await store.platform_config(conn, app_id, platform)
        if not exists:
            raise NotFound(f"app {app_id} does not exist", fix="Check the app id.")
        if public is None:
            return None
        decrypted = self._box.decrypt(secrets) if secrets else {}
        return {**public, **decrypted.get(platform.value, {})}

    async def credentials_invalid(self, app_id: str, platform: Platform) -> str | None:
        """Why a provider refused the app's credentials for ``platform``; None when not
        refused. Sending pauses for that app and platform while this is set; updating the
        app's configuration clears it."""
        async with self._db.read() as conn:
            found = await store.credential_status(conn, app_id)
        if found is None:
            return None
        status = found[0].get(platform.value) or {}
        if status.get("state") == CredentialState.INVALID.value:
            return str(status.get("reason") or "credentials refused")
        return None

    async def mark_credentials_invalid(self, app_id: str, platform: Platform,
                                       reason: str) -> None:
        """Record that a provider refused the app's credentials (shown in the app's status
        until the configuration is updated). Nothing happens if the app or platform is gone."""
        async with self._db.write() as conn:
            found = await store.credential_status(conn, app_id, lock=True)
            if found is None or platform not in found[1]:
                return
            status = found[0]
            status[platform.value] = CredentialStatus.invalid(self._clock.now(),
                                                              reason[:1000]).as_dict()
            await store.update_app(conn, app_id, {"credential_status": status})

    async def developer_info(self, org_id: str, app_id: str) -> DeveloperInfo:
        """What a token backend needs: public URL, ids, and the exact endpoints to call."""
        app = await self.get(org_id, app_id)
        public_url = self._settings.public_url
        platforms = [p for p in Platform if p in app.platforms]
        web = app.platforms.get(Platform.WEB)
        return DeveloperInfo(
            public_url=public_url, org_id=org_id, app_id=app.id, app_name=app.name,
            platforms=platforms, endpoints=endpoints_for(public_url, org_id),
            web_vapid_public_key=None if web is None else web.get("vapid_public_key"),
            api_token_count=app.api_token_count,
            example_registration=example_registration(app.id, platforms),
        )

    # ------------------------------------------------------------------------ API tokens

    async def create_token(self, org_id: str, app_id: str,
                           name: str = "default") -> ApiTokenCreated:
        """A new API token for the app; its value is in the answer and nowhere else, ever."""
        name = api_token_name(name)
        value = new_token(TOKEN_PREFIX)
        read = ApiTokenRead(id=str(uuid.uuid4()), app_id=app_id, name=name,
                            prefix=value[:SHOWN_PREFIX_LENGTH], created_at=self._clock.now(),
                            revoked_at=None)
        async with self._db.write() as conn:
            await require_app(conn, org_id, app_id)
            await store.insert_api_token(
                conn, token_id=read.id, org_id=org_id, app_id=app_id,
                token_hash=hash_token(value), prefix=read.prefix, name=name,
                now=read.created_at)
        return ApiTokenCreated(token=read, value=value)

    async def tokens_of(self, org_id: str, app_id: str) -> list[ApiTokenRead]:
        """Every token of the app, revoked ones included (with ``revoked_at``), oldest
        first."""
        async with self._db.read() as conn:
            await require_app(conn, org_id, app_id)
            return await store.api_tokens(conn, org_id, app_id)

    async def revoke_token(self, org_id: str, app_id: str, token_id: str) -> None:
        """Revoke a token (idempotent: revoking it again keeps the first revocation time):
        refused at once by this process, by every process within the cache's TTL."""
        async with self._db.write() as conn:
            exists, revoked_at = await store.api_token_revoked_at(conn, org_id, app_id,
                                                                  token_id)
            if not exists:
                await require_app(conn, org_id, app_id)
                raise NotFound(f"API token {token_id} does not exist for app {app_id}",
                               fix=f"List the tokens with `clarion apps tokens list --org "
                               f"{org_id} --app {app_id}`.")
            if revoked_at is None:
                await store.revoke_api_token(conn, token_id, self._clock.now())
        self.tokens.invalidate()
