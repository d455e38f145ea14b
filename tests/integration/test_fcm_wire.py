"""FcmSender against the FCM emulator over real sockets on 127.0.0.1 (HTTP and TLS), and the
emulator's own checks (token endpoint, message validation, faults, log)."""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest

from clarion.domain.outcomes import (
    DeviceAddress,
    DeviceSend,
    Notification,
    OutcomeKind,
    Platform,
)
from clarion.emulators.fcm import FcmEmulator, new_service_account_info
from clarion.emulators.tls import make_pki
from clarion.providers.base import ProviderSettings
from clarion.providers.fcm import FcmSender
from clarion.providers.fcm.auth import AccessTokens

pytestmark = pytest.mark.integration

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


@functools.cache
def _base_account(project: str, index: int = 0) -> Mapping[str, Any]:
    """RSA keys are slow to make: one per (project, index) for the whole module."""
    return new_service_account_info(project, "unset",
                                    client_email=f"sa{index}@{project}.iam.gserviceaccount.com")


def account(emu: FcmEmulator, project: str = "proj-a", index: int = 0, *,
            register: bool = True) -> dict[str, Any]:
    info = {**_base_account(project, index), "token_uri": emu.token_uri}
    if register:
        emu.register_service_account(info)
    return info


def creds(info: Mapping[str, Any], *, project: str | None = None, block: bool = False
          ) -> dict[str, Any]:
    return {"project_id": project or info["project_id"], "client_email": info["client_email"],
            "token_uri": info["token_uri"], "notification_block": block,
            "service_account": dict(info)}


def sends(*tokens: str, notification: Notification | None = None, dry_run: bool = False
          ) -> list[DeviceSend]:
    n = notification or Notification(title="Hello", body="World", tracking_id="trk-1")
    return [DeviceSend(f"d{i}", DeviceAddress(Platform.ANDROID, t), n, dry_run=dry_run)
            for i, t in enumerate(tokens)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def emu() -> AsyncIterator[FcmEmulator]:
    emulator = FcmEmulator()
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()


@pytest.fixture
async def sender(emu: FcmEmulator) -> AsyncIterator[FcmSender]:
    s = FcmSender(ProviderSettings(fcm_url=emu.url, request_timeout_seconds=5))
    try:
        yield s
    finally:
        await s.aclose()


def token_requests(emu: FcmEmulator) -> list[dict[str, Any]]:
    return [r for r in emu.received if r["path"] == "/token"]


def send_requests(emu: FcmEmulator) -> list[dict[str, Any]]:
    return [r for r in emu.received if r["path"].endswith("messages:send")]


# --- the sender at the wire ------------------------------------------------------------------

async def test_send_delivers_a_data_message_with_notification_block(
        emu: FcmEmulator, sender: FcmSender) -> None:
    info = account(emu)
    n = Notification(title="Sale", body="Now", image_url="https://img/1.png",
                     link="https://t/r/1", original_link="https://shop", tracking_id="trk",
                     data={"order": "42"}, priority="normal", ttl_seconds=600,
                     collapse_key="sale")
    [out] = await sender.send(creds(info, block=True), sends("tok-ok", notification=n))
    assert out.kind is OutcomeKind.ACCEPTED
    [delivered] = emu.delivered
    assert out.provider_id == delivered["name"]
    assert out.provider_id.startswith("projects/proj-a/messages/0:")
    message = delivered["message"]
    assert message["data"] == {"order": "42", "title": "Sale", "body": "Now",
                               "imageUrl": "https://img/1.png", "link": "https://t/r/1",
                               "originalLink": "https://shop", "trackingId": "trk"}
    assert message["notification"] == {"title": "Sale", "body": "Now",
                                       "image": "https://img/1.png"}
    assert message["android"] == {"priority": "NORMAL", "ttl": "600s", "collapse_key": "sale"}
    [grant] = token_requests(emu)
    claims = grant["request"]["assertion_claims"]
    assert claims["iss"] == info["client_email"]
    assert claims["scope"] == SCOPE


async def test_every_token_fault_maps_to_its_outcome(emu: FcmEmulator,
                                                     sender: FcmSender) -> None:
    info = account(emu)
    emu.mark_dead("was-alive")
    outcomes = await sender.send(creds(info), sends(
        "good", "dead-1", "was-alive", "bad-token", "has space", "other-project-x",
        "third-party-auth-x"))
    kinds = {o.delivery_id: (o.kind, o.reason) for o in outcomes}
    assert kinds == {
        "d0": (OutcomeKind.ACCEPTED, None),
        "d1": (OutcomeKind.INVALID_TOKEN, "UNREGISTERED"),
        "d2": (OutcomeKind.INVALID_TOKEN, "UNREGISTERED"),
        "d3": (OutcomeKind.INVALID_TOKEN, "INVALID_ARGUMENT"),
        "d4": (OutcomeKind.INVALID_TOKEN, "INVALID_ARGUMENT"),
        "d5": (OutcomeKind.MISMATCH, "SENDER_ID_MISMATCH"),
        "d6": (OutcomeKind.CREDENTIAL_ERROR, "THIRD_PARTY_AUTH_ERROR"),
    }
    assert len(emu.delivered) == 1
    assert len(token_requests(emu)) == 1  # THIRD_PARTY_AUTH_ERROR did not refresh our token


@pytest.mark.parametrize(("knob", "status", "reason"), [
    ("rate_429", 429, "QUOTA_EXCEEDED"), ("rate_503", 503, "UNAVAILABLE"),
    ("rate_500", 500, "INTERNAL"),
])
async def test_overload_is_retry_later_with_retry_after(
        emu: FcmEmulator, sender: FcmSender, knob: str, status: int, reason: str) -> None:
    info = account(emu)
    setattr(emu, knob, 1.0)
    emu.retry_after = "7"
    outcomes = await sender.send(creds(info), sends("a", "b"))
    assert {(o.kind, o.reason, o.retry_after_seconds) for o in outcomes} == {
        (OutcomeKind.RETRY_LATER, reason, 7.0)}
    assert {r["status"] for r in send_requests(emu)} == {status}


async def test_retry_after_as_an_http_date(emu: FcmEmulator, sender: FcmSender) -> None:
    info = account(emu)
    emu.rate_503 = 1.0
    emu.retry_after = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    [out] = await sender.send(creds(info), sends("a"))
    assert out.kind is OutcomeKind.RETRY_LATER
    assert out.retry_after_seconds is not None
    assert 55 <= out.retry_after_seconds <= 60


async def test_seeded_fault_rates_are_reproducible() -> None:
    async def run() -> list[int]:
        async with FcmEmulator(seed=7, rate_429=0.3, rate_503=0.2) as e:
            s = FcmSender(ProviderSettings(fcm_url=e.url))
            try:
                await s.send(creds(account(e)), sends(*[f"t{i}" for i in range(40)]))
            finally:
                await s.aclose()
            return sorted(r["status"] for r in send_requests(e))
    first, second = await run(), await run()
    assert first == second
    assert {200, 429, 503} <= set(first)


async def test_dry_run_validates_without_delivering(emu: FcmEmulator,
                                                   sender: FcmSender) -> None:
    info = account(emu)
    outcomes = await sender.send(creds(info, block=True), sends("fine", "dead-x",
                                                                 dry_run=True))
    by_id = {o.delivery_id: o for o in outcomes}
    assert by_id["d0"].kind is OutcomeKind.ACCEPTED
    assert by_id["d0"].provider_id == "projects/proj-a/messages/fake_message_id"
    assert by_id["d1"].kind is OutcomeKind.INVALID_TOKEN
    assert emu.delivered == []
    body = send_requests(emu)[0]["request"]["body"]
    assert body["validate_only"] is True
    assert "notification" not in body["message"]


async def test_too_big_is_rejected_before_sending(emu: FcmEmulator, sender: FcmSender) -> None:
    info = account(emu)
    big = Notification(title="t", body="x" * 5000)
    outcomes = await sender.send(creds(info), sends("a", notification=big))
    [out] = outcomes
    assert (out.kind, out.reason) == (OutcomeKind.REJECTED, "MessageTooBig")
    assert out.detail is not None
    assert "over FCM's 4096-byte limit" in out.detail
    assert emu.received == []  # not even a token was fetched


async def test_long_ttl_is_clamped_and_reported(emu: FcmEmulator, sender: FcmSender) -> None:
    info = account(emu)
    [out] = await sender.send(creds(info), sends("a", notification=Notification(
        ttl_seconds=60 * 24 * 3600)))
    assert out.kind is OutcomeKind.ACCEPTED
    assert out.detail is not None
    assert "2419200" in out.detail
    assert emu.delivered[0]["message"]["android"]["ttl"] == "2419200s"


async def test_one_token_for_concurrent_sends_and_batches(emu: FcmEmulator,
                                                         sender: FcmSender) -> None:
    info = account(emu)
    c = creds(info)
    results = await asyncio.gather(*(sender.send(c, sends(*[f"t{i}" for i in range(30)]))
                                     for _ in range(3)))
    assert all(o.kind is OutcomeKind.ACCEPTED for batch in results for o in batch)
    await sender.send(c, sends("later"))
    assert len(token_requests(emu)) == 1
    assert len(emu.delivered) == 91


async def test_two_projects_get_their_own_tokens(emu: FcmEmulator, sender: FcmSender) -> None:
    a, b = account(emu, "proj-a"), account(emu, "proj-b")
    out_a = await sender.send(creds(a), sends("x"))
    out_b = await sender.send(creds(b), sends("y"))
    assert out_a[0].provider_id is not None
    assert out_a[0].provider_id.startswith("projects/proj-a")
    assert out_b[0].provider_id is not None
    assert out_b[0].provider_id.startswith("projects/proj-b")
    assert [r["request"]["assertion_claims"]["iss"] for r in token_requests(emu)] == [
        a["client_email"], b["client_email"]]


async def test_the_token_is_refreshed_early(emu: FcmEmulator) -> None:
    clock = [1000.0]
    settings = ProviderSettings(fcm_url=emu.url)
    s = FcmSender(settings, tokens=AccessTokens(settings, monotonic=lambda: clock[0]))
    c = creds(account(emu))
    try:
        await s.send(c, sends("a"))
        clock[0] += 3600 - 301  # more than five minutes left: the cached token is used
        await s.send(c, sends("b"))
        assert len(token_requests(emu)) == 1
        clock[0] += 2  # less than five minutes left: a new one is fetched before expiry
        outcomes = await s.send(c, sends("c"))
    finally:
        await s.aclose()
    assert outcomes[0].kind is OutcomeKind.ACCEPTED
    assert len(token_requests(emu)) == 2
    assert [r["status"] for r in send_requests(emu)] == [200, 200, 200]


async def test_a_revoked_token_is_refreshed_once_and_the_sends_retried(
        emu: FcmEmulator, sender: FcmSender) -> None:
    info = account(emu)
    c = creds(info)
    await sender.send(c, sends("warm"))
    emu.revoke_tokens()
    outcomes = await sender.send(c, sends(*[f"t{i}" for i in range(20)]))
    assert {o.kind for o in outcomes} == {OutcomeKind.ACCEPTED}
    assert len(token_requests(emu)) == 2  # twenty 401s, one shared refresh
    assert sum(1 for r in send_requests(emu) if r["status"] == 401) == 20


async def test_still_refused_after_a_refresh_is_a_credential_error(
        emu: FcmEmulator, sender: FcmSender) -> None:
    emu.authority.lifetime_seconds = 0  # every token it issues is already expired
    info = account(emu)
    [out] = await sender.send(creds(info), sends("a"))
    assert (out.kind, out.reason) == (OutcomeKind.CREDENTIAL_ERROR, "UNAUTHENTICATED")
    assert [r["status"] for r in send_requests(emu)] == [401, 401]


async def test_a_deleted_key_fails_the_whole_batch_with_the_fix(
        emu: FcmEmulator, sender: FcmSender) -> None:
    info = account(emu)
    emu.delete_key(info["client_email"])
    outcomes = await sender.send(creds(info), sends("a", "b", "c"))
    assert len(outcomes) == 3
    for out in outcomes:
        assert (out.kind, out.reason) == (OutcomeKind.CREDENTIAL_ERROR, "invalid_grant")
        assert out.detail is not None
        assert "deleted or disabled in Google Cloud: generate a new key" in out.detail
    assert send_requests(emu) == []


async def test_an_unknown_service_account_is_refused(emu: FcmEmulator,
                                                     sender: FcmSender) -> None:
    info = account(emu, register=False)
    [out] = await sender.send(creds(info), sends("a"))
    assert out.kind is OutcomeKind.CREDENTIAL_ERROR
    assert out.detail is not None
    # Google's words ("Invalid grant: account not found") pick Clarion's; they are not echoed.
    assert "service account was deleted or disabled in Google Cloud" in out.detail
    assert "account not found" not in out.detail


async def test_a_service_account_of_another_project_is_denied(
        emu: FcmEmulator, sender: FcmSender) -> None:
    info = account(emu, "proj-a")
    [out] = await sender.send(creds(info, project="proj-z"), sends("a"))
    assert (out.kind, out.reason) == (OutcomeKind.CREDENTIAL_ERROR, "PERMISSION_DENIED")
    assert len(token_requests(emu)) == 1  # 403 is not a token problem: no refresh


async def test_missing_service_account_is_a_credential_error(sender: FcmSender) -> None:
    outcomes = await sender.send({"project_id": "p"}, sends("a", "b"))
    assert {(o.kind, o.reason) for o in outcomes} == {
        (OutcomeKind.CREDENTIAL_ERROR, "InvalidServiceAccount")}
    broken = {"project_id": "p", "service_account": {"client_email": "x@y", "token_uri":
                                                     "http://127.0.0.1:1/token",
                                                     "private_key": "not a key"}}
    [out] = await sender.send(broken, sends("a"))
    assert (out.kind, out.reason) == (OutcomeKind.CREDENTIAL_ERROR, "InvalidServiceAccount")


async def test_unreachable_token_endpoint_is_retry_later(emu: FcmEmulator) -> None:
    closed = f"http://127.0.0.1:{_free_port()}"  # CLARION_FCM_URL's origin: an allowed token_uri
    info = {**account(emu), "token_uri": f"{closed}/token"}
    s = FcmSender(ProviderSettings(fcm_url=closed))
    try:
        outcomes = await s.send(creds(info), sends("a", "b"))
    finally:
        await s.aclose()
    assert {(o.kind, o.reason) for o in outcomes} == {(OutcomeKind.RETRY_LATER,
                                                       "ConnectionError")}


async def test_unreachable_fcm_is_retry_later(emu: FcmEmulator) -> None:
    info = account(emu)
    # Tokens from the emulator (its origin allowed), messages to a closed port.
    tokens = AccessTokens(ProviderSettings(fcm_url=emu.url))
    s = FcmSender(ProviderSettings(fcm_url=f"http://127.0.0.1:{_free_port()}"), tokens=tokens)
    try:
        outcomes = await s.send(creds(info), sends("a", "b"))
    finally:
        await s.aclose()
    assert {(o.kind, o.reason) for o in outcomes} == {(OutcomeKind.RETRY_LATER,
                                                       "ConnectionError")}


async def test_a_slow_answer_times_out_as_retry_later(emu: FcmEmulator) -> None:
    info = account(emu)
    s = FcmSender(ProviderSettings(fcm_url=emu.url, request_timeout_seconds=0.3))
    try:
        await s.send(creds(info), sends("warm"))  # fetch the token before the slowness
        emu.latency_ms = 1000
        outcomes = await s.send(creds(info), sends("a", "b"))
    finally:
        await s.aclose()
    assert {(o.kind, o.reason) for o in outcomes} == {(OutcomeKind.RETRY_LATER, "Timeout")}


async def test_latency_is_applied(emu: FcmEmulator, sender: FcmSender) -> None:
    info = account(emu)
    await sender.send(creds(info), sends("warm"))
    emu.latency_ms = 150
    started = time.perf_counter()
    [out] = await sender.send(creds(info), sends("a"))
    assert out.kind is OutcomeKind.ACCEPTED
    assert time.perf_counter() - started >= 0.14


async def test_dropped_connections_give_exactly_one_outcome_each(emu: FcmEmulator) -> None:
    info = account(emu)
    emu.drop_every = 3
    s = FcmSender(ProviderSettings(fcm_url=emu.url, fcm_connections=1))
    try:
        outcomes = await s.send(creds(info), sends(*[f"t{i}" for i in range(9)]))
    finally:
        await s.aclose()
    assert sorted(o.delivery_id for o in outcomes) == sorted(f"d{i}" for i in range(9))
    dropped = [o for o in outcomes if o.kind is OutcomeKind.RETRY_LATER]
    assert len(dropped) == 3
    assert {o.reason for o in dropped} == {"ConnectionError"}
    assert len(emu.delivered) == 6


async def test_over_tls_with_the_emulator_ca(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    async with FcmEmulator(ssl_context=pki.server_context()) as e:
        assert e.url.startswith("https://127.0.0.1:")
        info = account(e)  # the token endpoint is https too
        s = FcmSender(ProviderSettings(fcm_url=e.url, ca_file=pki.ca_file))
        try:
            [out] = await s.send(creds(info), sends("a"))
        finally:
            await s.aclose()
        assert out.kind is OutcomeKind.ACCEPTED
        untrusting = FcmSender(ProviderSettings(fcm_url=e.url))
        try:
            [refused] = await untrusting.send(creds(account(e, index=1)), sends("a"))
        finally:
            await untrusting.aclose()
        assert (refused.kind, refused.reason) == (OutcomeKind.RETRY_LATER, "ConnectionError")


# --- the emulator checks what FCM and Google's token endpoint check ------------------------

async def _grant(emu: FcmEmulator, assertion: str, grant_type: str = GRANT
                 ) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.post(
            emu.token_uri, data={"grant_type": grant_type, "assertion": assertion}) as resp:
        return resp.status, await resp.json()


def _assertion(info: Mapping[str, Any], **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": info["client_email"], "scope": SCOPE, "aud": info["token_uri"],
               "iat": now, "exp": now + 3600, **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, info["private_key"], algorithm="RS256",
                      headers={"kid": info["private_key_id"]})


async def test_token_endpoint_grants_a_valid_assertion(emu: FcmEmulator) -> None:
    info = account(emu)
    status, body = await _grant(emu, _assertion(info))
    assert status == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["access_token"].startswith("ya29.")
    google_aud = _assertion(info, aud="https://oauth2.googleapis.com/token")
    assert (await _grant(emu, google_aud))[0] == 200


@pytest.mark.parametrize(("change", "error", "words"), [
    ({"aud": "https://elsewhere/token"}, "invalid_grant", "audience"),
    ({"exp": int(time.time()) + 7200}, "invalid_grant", "short-lived"),
    ({"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, "invalid_grant",
     "short-lived"),
    ({"scope": "https://www.googleapis.com/auth/userinfo.email"}, "invalid_scope", "scope"),
    ({"scope": None}, "invalid_scope", "scope"),
    ({"iss": "nobody@x.iam.gserviceaccount.com"}, "invalid_grant", "account not found"),
])
async def test_token_endpoint_refuses_bad_assertions(emu: FcmEmulator, change: dict[str, Any],
                                                     error: str, words: str) -> None:
    info = account(emu)
    status, body = await _grant(emu, _assertion(info, **change))
    assert status == 400
    assert body["error"] == error
    assert words in body["error_description"]


async def test_token_endpoint_checks_the_signature_and_grant_type(emu: FcmEmulator) -> None:
    info = account(emu)
    forged = {**info, "private_key": _base_account("proj-a", 9)["private_key"]}
    status, body = await _grant(emu, _assertion(forged))
    assert (status, body["error_description"]) == (400, "Invalid JWT Signature.")
    status, body = await _grant(emu, _assertion(info), grant_type="client_credentials")
    assert (status, body["error"]) == (400, "unsupported_grant_type")
    status, body = await _grant(emu, "not-a-jwt")
    assert (status, body["error"]) == (400, "invalid_grant")


async def _raw_send(emu: FcmEmulator, body: Any, *, token: str | None, project: str = "proj-a"
                    ) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{emu.url}/v1/projects/{project}/messages:send"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with aiohttp.ClientSession() as http, http.post(url, data=data,
                                                         headers=headers) as resp:
        return resp.status, await resp.json()


@pytest.fixture
async def bearer(emu: FcmEmulator) -> str:
    status, body = await _grant(emu, _assertion(account(emu)))
    assert status == 200
    return str(body["access_token"])


async def test_send_needs_an_issued_token_for_the_project(emu: FcmEmulator,
                                                          bearer: str) -> None:
    ok = {"message": {"token": "t", "data": {"a": "b"}}}
    assert (await _raw_send(emu, ok, token=bearer))[0] == 200
    status, body = await _raw_send(emu, ok, token=None)
    assert (status, body["error"]["status"]) == (401, "UNAUTHENTICATED")
    assert body["error"]["details"][0]["reason"] == "CREDENTIALS_MISSING"
    status, body = await _raw_send(emu, ok, token="ya29.made-up")
    assert (status, body["error"]["status"]) == (401, "UNAUTHENTICATED")
    status, body = await _raw_send(emu, ok, token=bearer, project="proj-other")
    assert (status, body["error"]["status"]) == (403, "PERMISSION_DENIED")
    assert "cloudmessaging.messages.create" in body["error"]["message"]


@pytest.mark.parametrize(("message", "words"), [
    ({"token": "t", "data": {"n": 1}}, "Invalid value at 'message.data[0].value' (TYPE_STRING)"),
    ({"token": "t", "data": {"ok": "1", "flag": True}}, "'message.data[1].value'"),
    ({"token": "t", "data": {"from": "x"}}, "Invalid data payload key: from"),
    ({"data": {"a": "b"}}, "Recipient of the message is not set."),
    ({"token": "t", "topic": "news"}, "oneof field 'target' is already set"),
    ({"token": "t", "android": {"ttl": "3600"}}, "google.protobuf.Duration"),
    ({"token": "t", "android": {"ttl": "2419201s"}}, "4 weeks"),
    ({"token": "t", "android": {"priority": "URGENT"}}, "AndroidMessagePriority"),
    ({"token": "t", "android": {"colapse_key": "x"}}, 'Unknown name "colapse_key"'),
    ({"token": "t", "notification": {"title": 5}}, "message.notification.title"),
    ({"token": "t", "bogus": 1}, 'Unknown name "bogus"'),
    ({"token": "t", "data": {"big": "x" * 4100}}, "too big"),
])
async def test_send_validates_the_message_like_fcm(emu: FcmEmulator, bearer: str,
                                                   message: dict[str, Any], words: str) -> None:
    status, body = await _raw_send(emu, {"message": message}, token=bearer)
    assert status == 400
    assert body["error"]["status"] == "INVALID_ARGUMENT"
    assert words in body["error"]["message"]
    assert emu.delivered == []


async def test_send_refuses_a_body_that_is_not_a_message(emu: FcmEmulator, bearer: str) -> None:
    for raw in (b"{not json", json.dumps({"validate_only": True}).encode(),
                json.dumps({"message": {"token": "t"}, "validate_only": "yes"}).encode()):
        status, body = await _raw_send(emu, raw, token=bearer)
        assert (status, body["error"]["code"]) == (400, 400)


async def test_send_accepts_camel_case_and_dry_runs(emu: FcmEmulator, bearer: str) -> None:
    status, body = await _raw_send(emu, {"message": {"token": "t", "fcmOptions": {}},
                                         "validateOnly": True}, token=bearer)
    assert (status, body["name"]) == (200, "projects/proj-a/messages/fake_message_id")
    assert emu.delivered == []


async def test_log_file_and_admin_surface(tmp_path: Path) -> None:
    log = tmp_path / "fcm.jsonl"
    async with FcmEmulator(log_path=log) as e:
        s = FcmSender(ProviderSettings(fcm_url=e.url))
        try:
            await s.send(creds(account(e)), sends("ok", "dead-1"))
        finally:
            await s.aclose()
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{e.url}/_emulator/dead", json={"tokens": ["zombie"]}) as r:
                assert r.status == 200
            async with http.post(f"{e.url}/_emulator/dead", json={"tokens": "zombie"}) as r:
                assert r.status == 400
            async with http.get(f"{e.url}/_emulator/received") as r:
                listing = await r.json()
        assert "zombie" in e.dead
        assert len(listing["received"]) == 3
        assert listing["delivered"] == 1
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert next(line["path"] for line in lines) == "/token"
    statuses = sorted(line["status"] for line in lines[1:])
    assert statuses == [200, 404]
    sent = [line for line in lines if line["status"] == 200 and line["path"] != "/token"]
    assert sent[0]["request"]["body"]["message"]["data"]["title"] == "Hello"
    assert "ya29" not in json.dumps(lines[0]["answer"])[30:]  # the token is cut short


async def test_command_line_serves_tls_with_a_made_service_account(tmp_path: Path) -> None:
    sa_file, ca_file, log = tmp_path / "sa.json", tmp_path / "ca.pem", tmp_path / "log.jsonl"
    port = _free_port()
    code = "import typer; from clarion.emulators.fcm import command; typer.run(command)"
    proc = subprocess.Popen(  # noqa: ASYNC220 - a child we poll and stop ourselves
        [sys.executable, "-c", code, "--port", str(port), "--project", "cli-proj",
         "--make-service-account", str(sa_file), "--dead", "zombie", "--tls",
         "--ca-out", str(ca_file), "--log", str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(200):
            if sa_file.exists() and sa_file.stat().st_size > 0:
                break
            await asyncio.sleep(0.05)
        info = json.loads(sa_file.read_text())
        assert info["token_uri"] == f"https://127.0.0.1:{port}/token"
        s = FcmSender(ProviderSettings(fcm_url=f"https://127.0.0.1:{port}", ca_file=ca_file))
        try:
            outcomes = await s.send(creds(info), sends("hello", "zombie"))
        finally:
            await s.aclose()
        assert [o.kind for o in sorted(outcomes, key=lambda o: o.delivery_id)] == [
            OutcomeKind.ACCEPTED, OutcomeKind.INVALID_TOKEN]
        assert len(log.read_text().splitlines()) == 3  # token + two sends
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
