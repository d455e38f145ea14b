"""The FCM service account's ``token_uri``: only Google's token endpoint or the origin of the
operator's ``CLARION_FCM_URL`` (an emulator), refused with a 400 when an app is created or
updated and refused again when used (an app stored earlier); Google's own name resolving to a
private address (or rebinding to one) is refused by the outbound policy. Real HTTP on
127.0.0.1, a fake DNS."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from clarion.bootstrap import Container, build
from clarion.domain.outcomes import DeviceAddress, DeviceSend, Notification, OutcomeKind, Platform
from clarion.emulators.fcm import new_service_account_info
from clarion.providers.base import ProviderSettings
from clarion.providers.fcm import FcmSender
from clarion.services import apps, orgs
from clarion.store.migrate import upgrade
from tests.conftest import make_settings
from tests.factories import app_document, drain, world
from tests.integration.ssrf_support import (
    CASES,
    PUBLIC_NAME,
    Target,
    network,
    redirect_to,
    start_target,
)

pytestmark = pytest.mark.integration

GOOGLE = "https://oauth2.googleapis.com/token"
CLOSED_FCM = "http://127.0.0.1:9"  # the operator's CLARION_FCM_URL in these tests (closed)


@functools.cache
def _account() -> Mapping[str, Any]:
    return new_service_account_info("ssrf-proj", GOOGLE)


def creds(token_uri: str) -> dict[str, Any]:
    info = {**_account(), "token_uri": token_uri}
    return {"project_id": info["project_id"], "client_email": info["client_email"],
            "token_uri": token_uri, "notification_block": False, "service_account": info}


def one_send() -> list[DeviceSend]:
    return [DeviceSend("d0", DeviceAddress(Platform.ANDROID, "fcm-token"),
                       Notification(title="T", body="B"))]


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    started = await start_target()
    try:
        yield started
    finally:
        await started.stop()


async def send_with(target: Target, token_uri: str, *, fcm_url: str = CLOSED_FCM
                    ) -> tuple[OutcomeKind, str | None, str]:
    sender = FcmSender(ProviderSettings(fcm_url=fcm_url, request_timeout_seconds=2,
                                        network=network(target.dns)))
    try:
        [out] = await sender.send(creds(token_uri), one_send())
    finally:
        await sender.aclose()
    return out.kind, out.reason, out.detail or ""


@pytest.mark.parametrize("case", CASES)
async def test_a_token_uri_never_reaches_a_private_address(case: str, target: Target) -> None:
    host = target.hosts()[case]
    if case in ("name", "rebinding"):
        # Google's own name, answered by a poisoned (or rebinding) DNS.
        answers = target.dns.answers[host.split(":")[0]]
        target.dns.answers["oauth2.googleapis.com"] = [list(a) for a in answers]
        kind, reason, detail = await send_with(target, GOOGLE)
    else:
        kind, reason, detail = await send_with(target, f"http://{host}/token")
    assert target.silent(), f"{case}: a loopback listener was connected to"
    if case == "rebinding":
        assert kind is OutcomeKind.RETRY_LATER  # the "public" decoy speaks no TLS
        assert target.decoy.connections == 1
        assert target.dns.asked_for("oauth2.googleapis.com") == 1
    elif case == "name":
        assert (kind, reason) == (OutcomeKind.RETRY_LATER, "AddressRefused"), detail
        assert "private" in detail
    else:
        assert (kind, reason) == (OutcomeKind.CREDENTIAL_ERROR, "TokenUriNotAllowed"), detail
        assert "CLARION_FCM_URL" in detail


async def test_a_redirect_from_the_token_endpoint_is_not_followed(target: Target) -> None:
    target.decoy.answer = redirect_to(f"http://127.0.0.1:{target.v4.port}/token")
    origin = f"http://{PUBLIC_NAME}:{target.decoy.port}"
    kind, _, detail = await send_with(target, f"{origin}/token", fcm_url=origin)
    assert kind is OutcomeKind.RETRY_LATER
    assert "307" in detail
    assert len(target.decoy.requests) == 1
    assert target.silent()


@pytest.mark.parametrize("token_uri", [
    "https://evil.example/token", "https://oauth2.googleapis.com.evil.example/token",
    "https://oauth2.googleapis.com:8443/token", "https://oauth2.googleapis.com@evil.example/token",
    "http://127.0.0.1:8/token", "http://2130706433:9/token", "http://0x7f000001:9/token",
    "http://localhost:9/token", "https://127.0.0.1:9/token",
])
async def test_a_token_uri_outside_the_allowed_origins_is_a_400_at_create_and_update(
        token_uri: str, container: Container, client: httpx.AsyncClient) -> None:
    """The container's CLARION_FCM_URL is http://127.0.0.1:9 (tests/conftest.py)."""
    org = await orgs.create_org(db=container.db, clock=container.clock, name="O")
    auth = {"Authorization": f"Bearer {org.admin_token}"}
    doc = app_document()
    doc["android"]["service_account"]["token_uri"] = token_uri
    r = await client.post(f"/v1/orgs/{org.id}/apps", headers=auth, json=doc)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == "android.service_account.token_uri"
    assert "CLARION_FCM_URL" in r.json()["error"]["fix"]
    ok = await client.post(f"/v1/orgs/{org.id}/apps", headers=auth, json=app_document())
    assert ok.status_code == 201, ok.text
    app_id = ok.json()["id"]
    r = await client.patch(f"/v1/orgs/{org.id}/apps/{app_id}", headers=auth,
                           json={"android": {"service_account": doc["android"][
                               "service_account"]}})
    assert r.status_code == 400, r.text
    got = await client.get(f"/v1/orgs/{org.id}/apps/{app_id}", headers=auth)
    assert got.json()["android"]["token_uri"] == "http://127.0.0.1:9/token"


async def test_google_and_the_emulator_origin_are_accepted(
        container: Container, client: httpx.AsyncClient) -> None:
    org = await orgs.create_org(db=container.db, clock=container.clock, name="O")
    auth = {"Authorization": f"Bearer {org.admin_token}"}
    for uri in (GOOGLE, "https://accounts.google.com/o/oauth2/token",
                "http://127.0.0.1:9/token", "http://127.0.0.1:9/other/path"):
        doc = app_document()
        doc["android"]["service_account"]["token_uri"] = uri
        r = await client.post(f"/v1/orgs/{org.id}/apps", headers=auth, json=doc)
        assert r.status_code == 201, (uri, r.text)


async def test_an_app_stored_earlier_is_refused_at_use_in_clarions_words(
        sqlite_url: str, tmp_path: Path, target: Target) -> None:
    """Stored while CLARION_FCM_URL pointed at the listener; the operator has changed it since:
    the dry run refuses the token_uri, and the tenant reads why."""
    await asyncio.to_thread(upgrade, sqlite_url)
    earlier = f"http://127.0.0.1:{target.v4.port}"
    settings = make_settings(sqlite_url, tmp_path, fcm_url=CLOSED_FCM)
    c = build(settings, network=network(target.dns))
    await c.start()
    try:
        w = await world(c)
        doc = app_document()
        doc["android"]["service_account"]["token_uri"] = f"{earlier}/token"
        org_app = await apps.create_app(db=c.db, box=c.box, clock=c.clock, org_id=w.org_id,
                                        document=doc, fcm_url=earlier)
        from clarion.api.app import create_app

        transport = httpx.ASGITransport(app=create_app(c))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            r = await http.post(
                f"/api/v1.0/orgs/{w.org_id}/pushdeviceregistration/devices",
                headers={"x-ms-track-registration": "true"},
                json={"MobileAppId": org_app.app.id, "UserId": w.person_ids[0],
                      "ApiToken": org_app.api_token, "FcmDeviceToken": "fcm-stored"})
            assert r.status_code == 202
            await drain(c)
            auth = {"Authorization": f"Bearer {w.admin_token}"}
            reg = (await http.get(f"/v1/orgs/{w.org_id}/registrations/"
                                  f"{r.json()['RegistrationRequestId']}", headers=auth)).json()
            got = (await http.get(f"/v1/orgs/{w.org_id}/apps/{org_app.app.id}",
                                  headers=auth)).json()
    finally:
        await c.close()
    assert target.silent()
    assert (reg["status"], reg["failure_reason"]) == ("Failed", "DryRunSendingFailed")
    assert "TokenUriNotAllowed" in reg["detail"]
    status = got["credential_status"]["android"]
    assert status["state"] == "invalid"
    assert "CLARION_FCM_URL" in status["reason"]
