"""SSRF matrix for Web Push endpoints, at the registration dry run and at send, through the API
with the real Web Push sender (real HTTP on 127.0.0.1, a fake DNS).

Each case aims the endpoint at a loopback listener written another way; the listener must see
no connection and the tenant must read why in Clarion's words. The rebinding case resolves to a
"public" address (127.0.0.2, deemed public by the policy hook) first and to 127.0.0.1 second:
the connection must go to the checked address, the resolver asked once.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import insert

from clarion.bootstrap import Container, build
from clarion.domain.registration import token_hash
from clarion.store import tables as t
from clarion.store.migrate import upgrade
from tests.conftest import make_settings
from tests.factories import World, b64u, drain, world
from tests.integration.ssrf_support import (
    CASES,
    PUBLIC_NAME,
    REBIND_NAME,
    Target,
    network,
    redirect_to,
    start_target,
)

pytestmark = pytest.mark.integration


def subscription(endpoint: str) -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = key.public_bytes(serialization.Encoding.X962,
                             serialization.PublicFormat.UncompressedPoint)
    return {"endpoint": endpoint,
            "keys": {"p256dh": base64.urlsafe_b64encode(point).rstrip(b"=").decode(),
                     "auth": b64u(16)}}


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    started = await start_target()
    try:
        yield started
    finally:
        await started.stop()


@pytest.fixture
async def strict(sqlite_url: str, tmp_path: Path, target: Target) -> AsyncIterator[Container]:
    """A container with the real providers, no private opt-out, and the fake DNS."""
    await asyncio.to_thread(upgrade, sqlite_url)
    settings = make_settings(sqlite_url, tmp_path, webhook_allow_private=False,
                             webpush_allow_private=False)
    c = build(settings, network=network(target.dns))
    await c.start()
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
async def api(strict: Container) -> AsyncIterator[httpx.AsyncClient]:
    from clarion.api.app import create_app

    transport = httpx.ASGITransport(app=create_app(strict))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def admin(w: World) -> dict[str, str]:
    return {"authorization": f"Bearer {w.admin_token}"}


async def register(c: Container, api: httpx.AsyncClient, w: World, endpoint: str
                   ) -> dict[str, Any]:
    r = await api.post(
        f"/api/v1.0/orgs/{w.org_id}/pushdeviceregistration/devices",
        headers={"x-ms-track-registration": "true"},
        json={"MobileAppId": w.app_id, "UserId": w.person_ids[0], "ApiToken": w.api_token,
              "WebPushSubscription": subscription(endpoint)})
    assert r.status_code == 202, r.text
    await drain(c)
    got = await api.get(f"/v1/orgs/{w.org_id}/registrations/{r.json()['RegistrationRequestId']}",
                        headers=admin(w))
    assert got.status_code == 200, got.text
    out: dict[str, Any] = got.json()
    return out


async def send_to_stored(c: Container, api: httpx.AsyncClient, w: World, endpoint: str,
                         person: int = 0) -> dict[str, Any]:
    """A device stored earlier (before the rules, or by DNS that changed since) is sent to."""
    now = c.clock.now()
    async with c.db.write() as conn:
        await conn.execute(insert(t.devices).values(
            id=str(uuid.uuid4()), org_id=w.org_id, app_id=w.app_id,
            person_id=w.person_ids[person],
            platform="web", token=endpoint, token_hash=token_hash(endpoint),
            web_keys=subscription(endpoint)["keys"], state="active", state_reason=None,
            state_changed_at=now, created_at=now, updated_at=now, last_registered_at=now))
    r = await api.post(f"/v1/orgs/{w.org_id}/sends", headers=admin(w), json={
        "app_id": w.app_id, "user_id": w.person_ids[person],
        "message": {"title": "Hi", "body": "There"}})
    assert r.status_code == 202, r.text
    await drain(c)
    got = await api.get(f"/v1/orgs/{w.org_id}/sends/{r.json()['id']}", headers=admin(w))
    [delivery] = got.json()["deliveries"]
    out: dict[str, Any] = delivery
    return out


@pytest.mark.parametrize("case", CASES)
async def test_the_registration_dry_run_never_reaches_a_private_endpoint(
        case: str, strict: Container, api: httpx.AsyncClient, target: Target) -> None:
    w = await world(strict)
    reg = await register(strict, api, w, f"http://{target.hosts()[case]}/push/sub-1")
    assert target.silent(), f"{case}: a loopback listener was connected to"
    if case == "rebinding":
        assert reg["status"] == "Success"
        assert target.decoy.connections == 1  # the checked address, and only it
        assert target.dns.asked_for(REBIND_NAME) == 1
        return
    assert reg["status"] == "Failed"
    assert reg["failure_reason"] in ("InvalidDeviceToken", "DryRunSendingFailed")
    assert "private" in reg["detail"], reg["detail"]
    assert target.decoy.connections == 0


@pytest.mark.parametrize("case", CASES)
async def test_a_send_never_reaches_a_private_endpoint(
        case: str, strict: Container, api: httpx.AsyncClient, target: Target) -> None:
    w = await world(strict)
    delivery = await send_to_stored(strict, api, w, f"http://{target.hosts()[case]}/push/s")
    assert target.silent(), f"{case}: a loopback listener was connected to"
    if case == "rebinding":
        assert delivery["state"] == "accepted"
        assert target.decoy.connections == 1
        assert target.dns.asked_for(REBIND_NAME) == 1
        return
    assert (delivery["state"], delivery["reason"]) == ("rejected", "AddressRefused"), delivery
    assert "private" in delivery["detail"]


async def test_a_redirect_to_a_private_address_is_not_followed(
        strict: Container, api: httpx.AsyncClient, target: Target) -> None:
    target.decoy.answer = redirect_to(f"http://127.0.0.1:{target.v4.port}/steal")
    w = await world(strict)
    endpoint = f"http://{PUBLIC_NAME}:{target.decoy.port}/push/redirected"
    reg = await register(strict, api, w, endpoint)
    assert (reg["status"], reg["failure_reason"]) == ("Failed", "DryRunSendingFailed")
    assert "307" in reg["detail"]
    delivery = await send_to_stored(strict, api, w, endpoint + "-2")
    assert delivery["state"] == "rejected"
    assert "307" in delivery["detail"]
    assert target.decoy.connections == 2
    assert target.silent()


async def test_the_operator_opt_out_reaches_a_private_push_service(
        sqlite_url: str, tmp_path: Path, target: Target) -> None:
    """CLARION_WEBPUSH_ALLOW_PRIVATE=1 (the emulator, an on-premises push service): both the
    dry run and sends go to a loopback endpoint, literal or named."""
    await asyncio.to_thread(upgrade, sqlite_url)
    settings = make_settings(sqlite_url, tmp_path, webhook_allow_private=False,
                             webpush_allow_private=True)
    c = build(settings, network=network(target.dns))
    await c.start()
    try:
        from clarion.api.app import create_app

        transport = httpx.ASGITransport(app=create_app(c))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            w = await world(c)
            hosts = target.hosts()
            reg = await register(c, http, w, f"http://{hosts['hex']}/push/ok")
            assert reg["status"] == "Success", reg
            delivery = await send_to_stored(c, http, w, f"http://{hosts['name']}/push/ok", 1)
            assert delivery["state"] == "accepted", delivery
    finally:
        await c.close()
    assert len(target.v4.requests) == 2  # the dry run, then the send
