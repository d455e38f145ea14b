"""No text a remote server chose reaches a tenant: token endpoints and push services answer
errors carrying a marker, and the marker appears in no API answer (registration detail,
credential status, delivery reason and detail). Clarion says what failed in its own words:
status, host and a recognised reason code. Real HTTP on 127.0.0.1 (the real FCM and Web Push
senders), SQLite."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from clarion.bootstrap import Container, build
from clarion.emulators.fcm import new_service_account_info
from clarion.services import apps, orgs, people
from clarion.store.migrate import upgrade
from tests.conftest import make_settings
from tests.factories import b64u, drain
from tests.integration.ssrf_support import Listener, http_answer

pytestmark = pytest.mark.integration

MARKER = "MARKER-5e1f"


def _body(request: bytes) -> dict[str, Any]:
    raw = request.split(b"\r\n\r\n", 1)[1]
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def google_error(code: int, status: str, message: str, fcm: str | None = None) -> bytes:
    details = ([{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                 "errorCode": fcm}] if fcm else [])
    return http_answer(code, json.dumps({"error": {"code": code, "message": message,
                                                   "status": status, "details": details}}
                                        ).encode())


class Tenant:
    """An org with one app (FCM on the listener's origin, Web Push), people, and the API."""

    def __init__(self, c: Container, http: httpx.AsyncClient, origin: str) -> None:
        self.c, self.http, self.origin = c, http, origin
        self.texts: list[str] = []  # every API answer read: the marker must be in none

    async def setup(self, *, dry_run: bool) -> None:
        org = await orgs.create_org(db=self.c.db, clock=self.c.clock, name="O")
        self.org, self.auth = org.id, {"Authorization": f"Bearer {org.admin_token}"}
        account = new_service_account_info("remote-proj", f"{self.origin}/token")
        created = await apps.create_app(
            db=self.c.db, box=self.c.box, clock=self.c.clock, org_id=org.id, fcm_url=self.origin,
            document={"name": "A", "android": {"service_account": account},
                      "web": {"vapid_subject": "mailto:ops@example.com"},
                      "settings": {"dry_run_on_register": dry_run}})
        self.app, self.api_token = created.app.id, created.api_token
        self.person = (await people.create_person(
            db=self.c.db, clock=self.c.clock, settings=self.c.settings, org_id=org.id,
            data={"email": "p@example.com"})).id

    async def get(self, path: str) -> Any:
        r = await self.http.get(path, headers=self.auth)
        assert r.status_code == 200, r.text
        self.texts.append(r.text)
        return r.json()

    async def register(self, **token: Any) -> dict[str, Any]:
        r = await self.http.post(
            f"/api/v1.0/orgs/{self.org}/pushdeviceregistration/devices",
            headers={"x-ms-track-registration": "true"},
            json={"MobileAppId": self.app, "UserId": self.person, "ApiToken": self.api_token,
                  **token})
        assert r.status_code == 202, r.text
        await drain(self.c)
        reg: dict[str, Any] = await self.get(
            f"/v1/orgs/{self.org}/registrations/{r.json()['RegistrationRequestId']}")
        return reg

    async def send(self) -> list[dict[str, Any]]:
        r = await self.http.post(f"/v1/orgs/{self.org}/sends", headers=self.auth, json={
            "app_id": self.app, "user_id": self.person,
            "message": {"title": "Hi", "body": "There"}})
        assert r.status_code == 202, r.text
        await drain(self.c)
        got = await self.get(f"/v1/orgs/{self.org}/sends/{r.json()['id']}")
        out: list[dict[str, Any]] = got["deliveries"]
        return out

    def clean(self) -> bool:
        return all(MARKER not in text for text in self.texts)


@pytest.fixture
async def peer() -> AsyncIterator[Listener]:
    listener = await Listener().start()
    try:
        yield listener
    finally:
        await listener.stop()


@pytest.fixture
async def tenant_for(sqlite_url: str, tmp_path: Path, peer: Listener
                     ) -> AsyncIterator[Callable[..., Any]]:
    await asyncio.to_thread(upgrade, sqlite_url)
    origin = f"http://127.0.0.1:{peer.port}"
    c = build(make_settings(sqlite_url, tmp_path, fcm_url=origin))
    await c.start()
    from clarion.api.app import create_app

    transport = httpx.ASGITransport(app=create_app(c))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        async def make(*, dry_run: bool) -> Tenant:
            t = Tenant(c, http, origin)
            await t.setup(dry_run=dry_run)
            return t
        try:
            yield make
        finally:
            await c.close()


def subscription(path: str, port: int) -> dict[str, Any]:
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return {"endpoint": f"http://127.0.0.1:{port}{path}",
            "keys": {"p256dh": base64.urlsafe_b64encode(point).rstrip(b"=").decode(),
                     "auth": b64u(16)}}


async def test_a_refusing_token_endpoint_is_described_not_echoed(
        peer: Listener, tenant_for: Callable[..., Any]) -> None:
    peer.answer = http_answer(400, json.dumps({
        "error": "invalid_grant", "error_description": f"{MARKER} Invalid JWT Signature."}
    ).encode())
    t = await tenant_for(dry_run=True)
    reg = await t.register(FcmDeviceToken="fcm-1")
    app = await t.get(f"/v1/orgs/{t.org}/apps/{t.app}")
    assert (reg["status"], reg["failure_reason"]) == ("Failed", "DryRunSendingFailed")
    reason = app["credential_status"]["android"]["reason"]
    for said in (reg["detail"], reason):
        assert "the OAuth token endpoint 127.0.0.1:" in said  # the host, in Clarion's words
        assert "answered 400 invalid_grant" in said  # the status and the OAuth error code
        assert "deleted or disabled in Google Cloud" in said  # what it means
    assert t.clean(), [x for x in t.texts if MARKER in x]


async def test_fcm_error_messages_are_described_not_echoed(
        peer: Listener, tenant_for: Callable[..., Any]) -> None:
    answers = {
        "fcm-payload": google_error(400, "INVALID_ARGUMENT", f"{MARKER} Invalid value"),
        "fcm-token": google_error(400, "INVALID_ARGUMENT",
                                  f"The registration token is not a valid FCM registration "
                                  f"token {MARKER}"),
        "fcm-teapot": http_answer(418, f"<html>{MARKER}</html>".encode(), "text/html"),
        "fcm-busy": http_answer(503, f"<html>{MARKER}</html>".encode(), "text/html"),
        "fcm-made-up": google_error(400, f"{MARKER}_STATUS", "x", fcm=f"{MARKER}_CODE"),
        "fcm-perm": google_error(403, "PERMISSION_DENIED", f"{MARKER} not allowed"),
    }

    def answer(request: bytes) -> bytes:
        if request.startswith(b"POST /token"):
            return http_answer(200, b'{"access_token": "ya29.t", "expires_in": 3600}')
        return answers[_body(request)["message"]["token"]]

    peer.answer = answer
    t = await tenant_for(dry_run=False)
    for token in answers:
        assert (await t.register(FcmDeviceToken=token))["status"] == "Success"
    deliveries = await t.send()
    await t.get(f"/v1/orgs/{t.org}/apps/{t.app}")
    assert len(deliveries) == len(answers)
    assert {d["reason"] for d in deliveries} >= {"INVALID_ARGUMENT", "PERMISSION_DENIED"}
    assert t.clean(), [x for x in t.texts if MARKER in x]


async def test_push_service_bodies_are_described_not_echoed(
        peer: Listener, tenant_for: Callable[..., Any]) -> None:
    answers = {
        "/plain": http_answer(400, f"{MARKER} bad header".encode(), "text/plain"),
        "/apple": http_answer(400, json.dumps({"reason": f"{MARKER}Reason"}).encode()),
        "/mozilla": http_answer(400, json.dumps({"code": 400, "errno": 111,
                                                 "message": f"{MARKER} Missing TTL"}).encode()),
        "/gone": http_answer(410, f"{MARKER} expired".encode(), "text/plain"),
        "/teapot": http_answer(418, f"{MARKER}".encode(), "text/plain"),
        "/busy": http_answer(503, f"{MARKER}".encode(), "text/plain"),
        "/jwt": http_answer(401, json.dumps({"errno": 109, "message":
                                             f"{MARKER} Invalid VAPID token"}).encode()),
    }

    def answer(request: bytes) -> bytes:
        path = request.split(b" ", 2)[1].decode()
        return answers[path]

    peer.answer = answer
    t = await tenant_for(dry_run=False)
    for path in answers:
        sub = subscription(path, peer.port)
        assert (await t.register(WebPushSubscription=sub))["status"] == "Success"
    deliveries = await t.send()
    await t.get(f"/v1/orgs/{t.org}/apps/{t.app}")
    assert len(deliveries) == len(answers)
    assert all(d["detail"] for d in deliveries)
    assert t.clean(), [x for x in t.texts if MARKER in x]
    # The registration dry run says the same, in the same words.
    dry = await tenant_for(dry_run=True)
    reg = await dry.register(WebPushSubscription=subscription("/plain", peer.port))
    assert (reg["status"], reg["failure_reason"]) == ("Failed", "DryRunSendingFailed")
    assert "400" in reg["detail"]
    assert dry.clean(), [x for x in dry.texts if MARKER in x]
