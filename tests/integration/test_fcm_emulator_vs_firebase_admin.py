"""The FCM emulator against an independent client: firebase-admin's messaging.

firebase-admin gets its access token from the service account's ``token_uri`` (google-auth,
pointed at the emulator) and posts to ``_MessagingService.FCM_URL`` (a class attribute,
patched here). Its sync API blocks, so it runs in a thread; ``send_each_async`` (httpx) runs
on a loop of its own in another thread.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import firebase_admin
import pytest
from firebase_admin import credentials, exceptions, messaging

from clarion.emulators.fcm import FcmEmulator, new_service_account_info

# Clarion stores FCM registration tokens, so the tests send to ``token`` as Clarion does;
# firebase-admin 7 deprecates it in favour of ``fid`` (tested once below).
pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore:Message.token is deprecated:DeprecationWarning"),
]


@functools.cache
def _base_account(project: str) -> Mapping[str, Any]:
    return new_service_account_info(project, "unset")


@pytest.fixture
async def emu() -> AsyncIterator[FcmEmulator]:
    emulator = FcmEmulator()
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()


@pytest.fixture
def fcm_url(emu: FcmEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(messaging._MessagingService, "FCM_URL",
                        f"{emu.url}/v1/projects/{{0}}/messages:send")


@pytest.fixture
def app(emu: FcmEmulator, fcm_url: None) -> Iterator[firebase_admin.App]:
    info = {**_base_account("fa-proj"), "token_uri": emu.token_uri}
    emu.register_service_account(info)
    fa_app = firebase_admin.initialize_app(credentials.Certificate(info),
                                           name=f"clarion-{uuid.uuid4().hex}")
    try:
        yield fa_app
    finally:
        firebase_admin.delete_app(fa_app)  # closes its clients with asyncio.run: not in a loop


async def _send_each_async(app: firebase_admin.App, batch: list[messaging.Message]
                           ) -> messaging.BatchResponse:
    """firebase-admin's async path refreshes its token with blocking I/O inside the event loop:
    on the emulator's own loop that would deadlock, so it gets a loop in another thread."""
    async def run() -> messaging.BatchResponse:
        try:
            return await messaging.send_each_async(batch, dry_run=False, app=app)
        finally:  # its httpx connections belong to this loop: close them before it ends
            await messaging._get_messaging_service(app)._async_client.aclose()

    return await asyncio.to_thread(asyncio.run, run())


async def _send(app: firebase_admin.App, message: messaging.Message, *,
                dry_run: bool = False) -> str:
    return await asyncio.to_thread(messaging.send, message, dry_run, app)


async def test_send_returns_the_name_and_delivers(emu: FcmEmulator,
                                                  app: firebase_admin.App) -> None:
    name = await _send(app, messaging.Message(
        token="device-1", data={"title": "Hi", "trackingId": "t-1"},
        notification=messaging.Notification(title="Hi", body="there"),
        android=messaging.AndroidConfig(priority="high", ttl=3600, collapse_key="k")))
    [delivered] = emu.delivered
    assert name == delivered["name"]
    assert name.startswith("projects/fa-proj/messages/")
    message = delivered["message"]
    assert message["data"] == {"title": "Hi", "trackingId": "t-1"}
    assert message["android"]["ttl"] == "3600s"
    assert message["android"]["priority"] == "high"
    grants = [r for r in emu.received if r["path"] == "/token"]
    assert len(grants) == 1
    assert grants[0]["status"] == 200


async def test_send_to_a_firebase_installation_id(emu: FcmEmulator,
                                                  app: firebase_admin.App) -> None:
    name = await _send(app, messaging.Message(fid="fid-1", data={"a": "b"}))
    assert emu.delivered[0]["message"]["fid"] == "fid-1"
    assert name == emu.delivered[0]["name"]
    with pytest.raises(messaging.UnregisteredError):
        await _send(app, messaging.Message(fid="dead-fid", data={"a": "b"}))


async def test_dry_run_is_validated_not_delivered(emu: FcmEmulator,
                                                 app: firebase_admin.App) -> None:
    name = await _send(app, messaging.Message(token="device-1", data={"a": "b"}), dry_run=True)
    assert name == "projects/fa-proj/messages/fake_message_id"
    assert emu.delivered == []
    with pytest.raises(messaging.UnregisteredError):
        await _send(app, messaging.Message(token="dead-9", data={"a": "b"}), dry_run=True)


@pytest.mark.parametrize(("token", "error"), [
    ("dead-1", messaging.UnregisteredError),
    ("other-project-1", messaging.SenderIdMismatchError),
    ("third-party-auth-1", messaging.ThirdPartyAuthError),
    ("bad token", exceptions.InvalidArgumentError),
])
async def test_token_faults_raise_firebase_admins_errors(
        app: firebase_admin.App, token: str, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        await _send(app, messaging.Message(token=token, data={"a": "b"}))
    if token == "bad token":
        assert "not a valid FCM registration token" in str(info.value)


async def test_marked_dead_token_is_unregistered(emu: FcmEmulator,
                                                 app: firebase_admin.App) -> None:
    emu.mark_dead("was-fine")
    with pytest.raises(messaging.UnregisteredError):
        await _send(app, messaging.Message(token="was-fine", data={"a": "b"}))


async def test_quota_exceeded(emu: FcmEmulator, app: firebase_admin.App) -> None:
    # The async path: the sync one honours Retry-After and retries four times (slow).
    emu.rate_429 = 1.0
    response = await _send_each_async(app, [messaging.Message(token="t", data={"a": "b"})])
    error = response.responses[0].exception
    assert isinstance(error, messaging.QuotaExceededError)
    assert error.http_response.headers["Retry-After"] == "1"


async def test_non_string_data_never_reaches_the_wire(emu: FcmEmulator,
                                                      app: firebase_admin.App) -> None:
    # firebase-admin refuses it client-side; the emulator's own check is in test_fcm_wire.
    with pytest.raises(ValueError, match="data"):
        await _send(app, messaging.Message(token="t", data={"n": 1}))  # type: ignore[dict-item]
    assert [r for r in emu.received if r["path"].endswith(":send")] == []


async def test_revoked_token_is_refreshed_by_firebase_admin(emu: FcmEmulator,
                                                            app: firebase_admin.App) -> None:
    await _send(app, messaging.Message(token="t1", data={"a": "b"}))
    emu.revoke_tokens()
    await _send(app, messaging.Message(token="t2", data={"a": "b"}))
    assert len([r for r in emu.received if r["path"] == "/token"]) == 2
    assert len(emu.delivered) == 2


async def test_an_unknown_service_account_cannot_get_a_token(
        emu: FcmEmulator, fcm_url: None) -> None:
    info = {**_base_account("fa-proj"), "token_uri": emu.token_uri,
            "client_email": "stranger@fa-proj.iam.gserviceaccount.com"}
    fa_app = firebase_admin.initialize_app(credentials.Certificate(info),
                                           name=f"clarion-{uuid.uuid4().hex}")
    try:
        with pytest.raises(Exception, match="account not found"):
            await _send(fa_app, messaging.Message(token="t", data={"a": "b"}))
    finally:
        await asyncio.to_thread(firebase_admin.delete_app, fa_app)
    assert emu.delivered == []


async def test_send_each_async(emu: FcmEmulator, app: firebase_admin.App) -> None:
    batch = [messaging.Message(token=t, data={"i": str(i)})
             for i, t in enumerate(["a", "dead-b", "c", "other-project-d"])]
    response = await _send_each_async(app, batch)
    assert response.success_count == 2
    assert response.failure_count == 2
    results = response.responses
    assert results[0].success
    assert results[2].success
    assert isinstance(results[1].exception, messaging.UnregisteredError)
    assert isinstance(results[3].exception, messaging.SenderIdMismatchError)
    assert len(emu.delivered) == 2
