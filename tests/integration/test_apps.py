"""App configurations over real SQLite and PostgreSQL: storage, secrecy, isolation, tokens."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.bootstrap import Container
from clarion.clock import FrozenClock
from clarion.domain.outcomes import Platform
from clarion.errors import InvalidInput, NotFound
from clarion.services.apps import ApiTokenCache
from clarion.store import tables as t

pytestmark = pytest.mark.integration


def _pem(key: Any) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture(scope="module")
def p8() -> str:
    return _pem(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="module")
def rsa_pem() -> str:
    return _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def _body(pem: str) -> str:
    """The longest base64 line of a PEM: a piece of key material to look for."""
    return max(pem.splitlines(), key=len)


def config(p8: str, rsa_pem: str, **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "Contoso",
        "ios": {"auth": "token", "signing_key": p8.replace("\n", ""), "key_id": "ABC123DEFG",
                "team_id": "DEF123GHIJ", "bundle_id": "com.contoso.app",
                "environment": "sandbox"},
        "android": {"service_account": {
            "type": "service_account", "project_id": "contoso-push", "private_key": rsa_pem,
            "client_email": "push@contoso-push.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token"}},
        "web": {"vapid_subject": "mailto:ops@contoso.com"},
    }
    doc.update(over)
    return doc


async def _raw_row(container: Container, app_id: str) -> Any:
    async with container.db.read() as conn:
        return (await conn.execute(select(t.apps).where(t.apps.c.id == app_id))).one()


async def test_create_read_update_delete(container: Container, p8: str, rsa_pem: str) -> None:
    c = container
    org = await c.orgs.create("Contoso")
    created = await c.apps.create(org.id, config(p8, rsa_pem, settings={
                                        "max_devices_per_person": 3}))
    app = created.app
    assert created.api_token.startswith("clr_app_")
    assert set(app.platforms) == set(Platform)
    assert app.platforms[Platform.IOS]["key_id"] == "ABC123DEFG"
    assert app.platforms[Platform.ANDROID]["project_id"] == "contoso-push"
    vapid = app.platforms[Platform.WEB]["vapid_public_key"]
    assert {s.state.value for s in app.credential_status.values()} == {"valid"}
    assert app.api_token_count == 1
    assert app.settings.max_devices_per_person == 3
    assert app.settings.token_owner_policy == "move"
    assert await c.apps.get(org.id, app.id) == app
    assert [a.id for a in await c.apps.of_org(org.id)] == [app.id]

    # Secrets: encrypted at rest, absent from every clear column, readable for senders only.
    row = await _raw_row(c, app.id)
    stored = repr(tuple(row)) + row.secrets.decode("latin-1")
    for secret in (_body(p8), _body(rsa_pem), "BEGIN PRIVATE KEY", "private_key"):
        assert secret not in stored
    secrets = c.box.decrypt(row.secrets)
    assert secrets["ios"]["signing_key"] == p8
    ios = await c.apps.platform_credentials(app.id, Platform.IOS)
    assert ios is not None
    assert ios["signing_key"] == p8
    assert ios["key_id"] == "ABC123DEFG"
    web = await c.apps.platform_credentials(app.id, Platform.WEB)
    assert web is not None
    assert web["vapid_public_key"] == vapid
    assert len(web["vapid_private_key"]) == 43
    read_text = json.dumps(app.as_dict())
    assert _body(p8) not in read_text
    assert web["vapid_private_key"] not in read_text

    # A bad update changes nothing.
    with pytest.raises(InvalidInput) as bad:
        await c.apps.update(org.id, app.id, {"name": "Renamed", "ios": {"key_id": "SHORT"}})
    assert bad.value.field == "ios.key_id"
    assert await c.apps.get(org.id, app.id) == app

    # Partial update: iOS merged (the .p8 kept), Android removed, Web keys kept, settings merged.
    updated = await c.apps.update(org.id, app.id, {
                  "name": "Contoso 2", "ios": {"environment": "production"}, "android": None,
                  "web": {"vapid_subject": "https://contoso.com/push"},
                  "settings": {"token_owner_policy": "allow"}})
    assert updated.name == "Contoso 2"
    assert set(updated.platforms) == {Platform.IOS, Platform.WEB}
    assert set(updated.credential_status) == {Platform.IOS, Platform.WEB}
    assert updated.platforms[Platform.IOS]["environment"] == "production"
    assert updated.platforms[Platform.WEB]["vapid_public_key"] == vapid
    assert updated.settings.token_owner_policy == "allow"
    assert updated.settings.max_devices_per_person == 3
    assert await c.apps.platform_credentials(app.id, Platform.ANDROID) is None
    ios = await c.apps.platform_credentials(app.id, Platform.IOS)
    assert ios is not None
    assert ios["signing_key"] == p8
    assert ios["environment"] == "production"
    settings = await c.apps.settings(app.id)
    assert settings == updated.settings

    # Credential status flagged by a later delivery.
    await c.apps.mark_credentials_invalid(app.id, Platform.IOS, "InvalidProviderToken")
    await c.apps.mark_credentials_invalid(app.id, Platform.ANDROID, "no such platform")
    await c.apps.mark_credentials_invalid("nope", Platform.IOS, "gone")
    flagged = await c.apps.get(org.id, app.id)
    status = flagged.credential_status[Platform.IOS]
    assert (status.state.value, status.reason) == ("invalid", "InvalidProviderToken")
    assert flagged.credential_status[Platform.WEB].state.value == "valid"
    assert Platform.ANDROID not in flagged.credential_status

    await c.apps.delete(org.id, app.id)
    with pytest.raises(NotFound):
        await c.apps.get(org.id, app.id)
    with pytest.raises(NotFound):
        await c.apps.delete(org.id, app.id)
    async with c.db.read() as conn:
        left = (await conn.execute(select(func.count()).select_from(t.api_tokens))).scalar()
    assert left == 0


async def test_create_refusals_store_nothing(container: Container, p8: str,
                                             rsa_pem: str) -> None:
    c = container
    org = await c.orgs.create("Contoso")
    cases = [
        ({"android": {"service_account": {"project_info": {}, "client": []}}},
         "android.service_account"),
        ({"ios": {**config(p8, rsa_pem)["ios"], "environment": "staging"}}, "ios.environment"),
        ({"ios": {**config(p8, rsa_pem)["ios"], "signing_key": "garbage"}}, "ios.signing_key"),
    ]
    for change, field in cases:
        with pytest.raises(InvalidInput) as err:
            await c.apps.create(org.id, config(p8, rsa_pem, **change))
        assert err.value.field == field
    with pytest.raises(NotFound):
        await c.apps.create("no-such-org", config(p8, rsa_pem))
    assert await c.apps.of_org(org.id) == []


async def test_tokens_and_the_cache(container: Container, p8: str, rsa_pem: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    c = container
    org_a = await c.orgs.create("A")
    org_b = await c.orgs.create("B")
    web_only = {"name": "Web", "web": {"vapid_subject": "mailto:ops@a.com"}}
    a = await c.apps.create(org_a.id, web_only)
    other = await c.apps.create(org_a.id, web_only)
    b = await c.apps.create(org_b.id, web_only)
    extra = await c.apps.create_token(org_a.id, a.app.id, "backend-prod")
    listed = await c.apps.tokens_of(org_a.id, a.app.id)
    assert [(tok.name, tok.prefix) for tok in listed] == [
        ("default", a.api_token[:12]), ("backend-prod", extra.value[:12])]
    assert all(tok.revoked_at is None for tok in listed)
    assert (await c.apps.get(org_a.id, a.app.id)).api_token_count == 2
    with pytest.raises(NotFound):
        await c.apps.create_token(org_b.id, a.app.id)
    with pytest.raises(NotFound):
        await c.apps.tokens_of(org_b.id, a.app.id)
    with pytest.raises(InvalidInput):
        await c.apps.create_token(org_a.id, a.app.id, " ")

    clock = FrozenClock()
    cache = ApiTokenCache(c.db, clock, ttl_seconds=5)
    reads = 0
    real_read = c.db.read

    @asynccontextmanager
    async def counting_read() -> AsyncIterator[AsyncConnection]:
        nonlocal reads
        reads += 1
        async with real_read() as conn:
            yield conn

    monkeypatch.setattr(c.db, "read", counting_read)
    info = await cache.verify(org_id=org_a.id, app_id=a.app.id, token=extra.value)
    assert info is not None
    assert (info.token_id, info.app_id, info.org_id) == (extra.token.id, a.app.id, org_a.id)
    # 20 concurrent checks of a known token and 20 of an unknown one: one lookup each, then
    # answered from memory (negative answers too).
    checks = [cache.verify(org_id=org_a.id, app_id=a.app.id, token=extra.value)
              for _ in range(20)]
    checks += [cache.verify(org_id=org_a.id, app_id=a.app.id, token="clr_app_unknown")
               for _ in range(20)]
    results = await asyncio.gather(*checks)
    assert results[:20] == [info] * 20
    assert results[20:] == [None] * 20
    assert reads == 2
    assert await cache.verify(org_id=org_a.id, app_id=a.app.id, token="clr_app_unknown") is None
    assert reads == 2
    # Wrong app, wrong org, another org's token, nonsense.
    assert await cache.verify(org_id=org_a.id, app_id=other.app.id, token=extra.value) is None
    assert await cache.verify(org_id=org_b.id, app_id=a.app.id, token=extra.value) is None
    assert await cache.verify(org_id=org_a.id, app_id=b.app.id, token=b.api_token) is None
    assert await cache.verify(org_id=org_b.id, app_id=b.app.id, token=b.api_token) is not None
    assert await cache.verify(org_id=org_a.id, app_id=a.app.id, token="x" * 10_000) is None

    # Revocation: this process after invalidate(); others once the TTL has passed.
    await c.apps.revoke_token(org_a.id, a.app.id, extra.token.id)
    await c.apps.revoke_token(org_a.id, a.app.id, extra.token.id)  # idempotent
    other_process = ApiTokenCache(c.db, clock, ttl_seconds=5)
    assert await cache.verify(org_id=org_a.id, app_id=a.app.id, token=extra.value) == info
    cache.invalidate()
    assert await cache.verify(org_id=org_a.id, app_id=a.app.id, token=extra.value) is None
    assert await other_process.verify(org_id=org_a.id, app_id=a.app.id,
                                      token=a.api_token) is not None
    clock.advance(5.1)
    assert await cache.verify(org_id=org_a.id, app_id=a.app.id, token=a.api_token) is not None
    revoked = [tok for tok in await c.apps.tokens_of(org_a.id, a.app.id)
               if tok.revoked_at is not None]
    assert [tok.id for tok in revoked] == [extra.token.id]
    assert (await c.apps.get(org_a.id, a.app.id)).api_token_count == 1
    with pytest.raises(NotFound):
        await c.apps.revoke_token(org_b.id, a.app.id, listed[0].id)

    small = ApiTokenCache(c.db, clock, ttl_seconds=60, max_entries=3)
    for i in range(5):
        await small.verify(org_id=org_a.id, app_id=a.app.id, token=f"clr_app_{i}")
    assert len(small) == 3


async def test_cross_org_isolation_in_services(container: Container, p8: str,
                                               rsa_pem: str) -> None:
    c = container
    org_a = await c.orgs.create("A")
    org_b = await c.orgs.create("B")
    a = await c.apps.create(org_a.id, config(p8, rsa_pem))
    with pytest.raises(NotFound):
        await c.apps.get(org_b.id, a.app.id)
    with pytest.raises(NotFound):
        await c.apps.update(org_b.id, a.app.id, {"name": "stolen"})
    with pytest.raises(NotFound):
        await c.apps.delete(org_b.id, a.app.id)
    with pytest.raises(NotFound):
        await c.apps.developer_info(org_b.id, a.app.id)
    assert await c.apps.of_org(org_b.id) == []
    assert (await c.apps.get(org_a.id, a.app.id)).name == "Contoso"


async def test_developer_info(container: Container, p8: str, rsa_pem: str) -> None:
    c = container
    org = await c.orgs.create("A")
    a = await c.apps.create(org.id, config(p8, rsa_pem))
    info = await c.apps.developer_info(org.id, a.app.id)
    base = f"{c.settings.public_url}/api/v1.0/orgs/{org.id}"
    assert info.public_url == c.settings.public_url
    assert (info.org_id, info.app_id, info.app_name) == (org.id, a.app.id, "Contoso")
    e = info.endpoints
    assert e.register_device == f"{base}/pushdeviceregistration/devices"
    assert e.register_devices_batch == f"{base}/pushdeviceregistration/devices/batch"
    assert e.registration_status == f"{base}/pushdeviceregistration/devices/status/"
    assert e.cleanup_device == f"{base}/pushdeviceregistration/devices/cleanup"
    assert e.cleanup_devices_batch == f"{base}/pushdeviceregistration/devices/cleanup/batch"
    assert e.interaction_events == f"{base}/pushdatareceiver/events"
    assert e.odata_contacts == f"{c.settings.public_url}/api/data/v9.0/contacts"
    assert info.web_vapid_public_key == a.app.platforms[Platform.WEB]["vapid_public_key"]
    assert info.example_registration["MobileAppId"] == a.app.id
    assert "ApnsDeviceToken" in info.example_registration


# --- REST -----------------------------------------------------------------------------------


async def test_rest_round_trip_and_isolation(container: Container, client: httpx.AsyncClient,
                                             p8: str, rsa_pem: str) -> None:
    c = container
    org_a = await c.orgs.create("A")
    org_b = await c.orgs.create("B")
    ha = {"Authorization": f"Bearer {org_a.admin_token}"}
    hb = {"Authorization": f"Bearer {org_b.admin_token}"}
    base = f"/v1/orgs/{org_a.id}/apps"
    seen: list[str] = []

    async def call(method: str, url: str, expect: int, **kw: Any) -> httpx.Response:
        r = await client.request(method, url, **kw)
        assert r.status_code == expect, r.text
        seen.append(r.text)
        return r

    r = await call("POST", base, 201, headers=ha, json=config(p8, rsa_pem))
    body = r.json()
    app_id = body["id"]
    assert body["app"]["id"] == app_id
    assert body["api_token"].startswith("clr_app_")
    assert body["app"]["ios"]["key_id"] == "ABC123DEFG"
    assert body["app"]["credential_status"]["android"]["state"] == "valid"
    assert body["app"]["settings"] == {"dry_run_on_register": True, "token_owner_policy": "move",
                                       "max_devices_per_person": 10}
    await call("GET", base, 200, headers=ha)
    await call("GET", f"{base}/{app_id}", 200, headers=ha)
    r = await call("PATCH", f"{base}/{app_id}", 200, headers=ha,
                   json={"ios": {"environment": "production"}, "settings": {
                       "dry_run_on_register": False}})
    assert r.json()["ios"]["environment"] == "production"
    assert r.json()["settings"]["dry_run_on_register"] is False
    r = await call("POST", f"{base}/{app_id}/tokens", 201, headers=ha, json={"name": "ci"})
    token = r.json()
    assert token["token"].startswith(token["prefix"])
    await call("POST", f"{base}/{app_id}/tokens", 201, headers=ha)  # no body: "default"
    r = await call("GET", f"{base}/{app_id}/tokens", 200, headers=ha)
    assert [x["name"] for x in r.json()] == ["default", "ci", "default"]
    assert all("token" not in x for x in r.json())
    r = await call("GET", f"{base}/{app_id}/developer-info", 200, headers=ha)
    info = r.json()
    assert info["endpoints"]["register_device"].endswith(
        f"/api/v1.0/orgs/{org_a.id}/pushdeviceregistration/devices")
    assert info["web_vapid_public_key"] == body["app"]["web"]["vapid_public_key"]

    # Revocation through the API is seen at once by the container's cache.
    assert await c.apps.tokens.verify(org_id=org_a.id, app_id=app_id,
                                     token=token["token"]) is not None
    await call("DELETE", f"{base}/{app_id}/tokens/{token['id']}", 204, headers=ha)
    assert await c.apps.tokens.verify(org_id=org_a.id, app_id=app_id, token=token["token"]) is None

    # Org B's admin sees nothing of org A: not through A's path, not through its own.
    for method, url in [("GET", f"{base}/{app_id}"), ("GET", base),
                        ("GET", f"{base}/{app_id}/developer-info"),
                        ("GET", f"{base}/{app_id}/tokens"), ("DELETE", f"{base}/{app_id}"),
                        ("GET", f"/v1/orgs/{org_b.id}/apps/{app_id}"),
                        ("GET", f"/v1/orgs/{org_b.id}/apps/{app_id}/tokens"),
                        ("DELETE", f"/v1/orgs/{org_b.id}/apps/{app_id}")]:
        await call(method, url, 404, headers=hb)
    await call("PATCH", f"/v1/orgs/{org_b.id}/apps/{app_id}", 404, headers=hb,
               json={"name": "stolen"})
    r = await call("GET", f"/v1/orgs/{org_b.id}/apps", 200, headers=hb)
    assert r.json() == []
    await call("GET", base, 401)

    # Friendly errors, not bare 422s.
    bad = config(p8, rsa_pem)
    bad["ios"] = {**bad["ios"], "key_id": "ABC123"}
    r = await call("POST", base, 400, headers=ha, json=bad)
    assert r.json()["error"]["field"] == "ios.key_id"
    assert "Key ID" in r.json()["error"]["fix"]
    r = await call("POST", base, 400, headers=ha, json=config(
        p8, rsa_pem, android={"service_account": {"project_info": {}, "client": []}}))
    assert "google-services.json" in r.json()["error"]["message"]
    await call("POST", base, 422, headers=ha, json=["not", "an", "object"])

    for text in seen:
        for secret in (_body(p8), _body(rsa_pem), "BEGIN PRIVATE KEY", "signing_key",
                       "vapid_private_key", "private_key\""):
            assert secret not in text
    await call("DELETE", f"{base}/{app_id}", 204, headers=ha)
    await call("GET", f"{base}/{app_id}", 404, headers=ha)
    assert await c.apps.tokens.verify(org_id=org_a.id, app_id=app_id,
                                     token=body["api_token"]) is None
