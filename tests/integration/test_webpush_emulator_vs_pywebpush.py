"""The Web Push emulator checked with an independent client: pywebpush (and requests).

pywebpush is synchronous (requests), so each call runs in a thread. Everything here is
pywebpush's own encryption and VAPID signing; Clarion's sender is not involved.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from pywebpush import WebPusher, WebPushException, webpush

from clarion.emulators.webpush import WebPushEmulator
from clarion.providers.webpush.crypto import b64url_encode

pytestmark = pytest.mark.integration

SUB_CLAIM = "mailto:ops@example.com"


class AppKey:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.private = b64url_encode(self.key.private_numbers().private_value.to_bytes(32, "big"))
        self.public = b64url_encode(self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))


@pytest.fixture
async def emulator() -> AsyncIterator[WebPushEmulator]:
    emu = WebPushEmulator()
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
def app() -> AppKey:
    return AppKey()


async def _webpush(sub: dict[str, Any], data: str | bytes | None, app: AppKey, *,
                   claims: dict[str, Any] | None = None, **kwargs: Any) -> requests.Response:
    claims = {"sub": SUB_CLAIM} if claims is None else claims
    response = await asyncio.to_thread(
        webpush, sub, data, vapid_private_key=app.private, vapid_claims=claims, timeout=10,
        **kwargs)
    assert isinstance(response, requests.Response)
    return response


async def _refused(sub: dict[str, Any], data: str | None, app: AppKey,
                   **kwargs: Any) -> requests.Response:
    with pytest.raises(WebPushException) as info:
        await _webpush(sub, data, app, **kwargs)
    assert info.value.response is not None
    response: requests.Response = info.value.response
    return response


async def test_pywebpush_message_is_verified_and_decrypted(
        emulator: WebPushEmulator, app: AppKey) -> None:
    sub = emulator.subscribe(app.public)
    text = json.dumps({"title": "Café ☕", "body": "日本語", "trackingId": "t-1"})
    response = await _webpush(sub, text, app, ttl=3600,
                              headers={"Urgency": "low", "Topic": "news"})
    assert response.status_code == 201
    assert response.headers["Location"].startswith(f"{emulator.origin}/m/")
    [msg] = emulator.received
    assert msg.plaintext == text.encode("utf-8")
    assert (msg.ttl, msg.urgency, msg.topic) == (3600, "low", "news")
    assert msg.vapid_claims["aud"] == emulator.origin
    assert msg.vapid_claims["sub"] == SUB_CLAIM
    assert msg.vapid_key == app.public


async def test_subscription_made_over_http_like_a_browser(
        emulator: WebPushEmulator, app: AppKey) -> None:
    resp = await asyncio.to_thread(requests.post, f"{emulator.origin}/_emulator/subscribe",
                                   json={"applicationServerKey": app.public}, timeout=10)
    assert resp.status_code == 201
    sub = resp.json()
    assert (await _webpush(sub, "hello", app, ttl=60)).status_code == 201
    listed = await asyncio.to_thread(requests.get, f"{emulator.origin}/_emulator/received",
                                     timeout=10)
    assert listed.json()["messages"][0]["plaintext"] == "hello"


async def test_large_payload_in_one_record_is_decrypted(
        emulator: WebPushEmulator, app: AppKey) -> None:
    sub = emulator.subscribe(app.public)
    data = "x" * 3993  # the largest plaintext whose body fits 4096 bytes
    assert (await _webpush(sub, data, app, ttl=60)).status_code == 201
    assert emulator.received[0].plaintext == data.encode()


async def test_over_4096_bytes_is_413(emulator: WebPushEmulator, app: AppKey) -> None:
    sub = emulator.subscribe(app.public)
    response = await _refused(sub, "x" * 3994, app, ttl=60)
    assert response.status_code == 413
    assert response.json()["errno"] == 104
    assert emulator.received == []


async def test_another_vapid_key_than_the_subscriptions_is_403(
        emulator: WebPushEmulator, app: AppKey) -> None:
    sub = emulator.subscribe(app.public)
    response = await _refused(sub, "hi", AppKey(), ttl=60)
    assert response.status_code == 403
    assert "VAPID public key mismatch" in response.json()["message"]


async def test_unrestricted_subscription_takes_any_valid_key(
        emulator: WebPushEmulator, app: AppKey) -> None:
    sub = emulator.subscribe()  # no applicationServerKey given
    assert (await _webpush(sub, "hi", app, ttl=60)).status_code == 201


async def test_gone_and_unknown_subscriptions(emulator: WebPushEmulator, app: AppKey) -> None:
    sub = emulator.subscribe(app.public)
    emulator.mark_gone(sub["endpoint"])
    gone = await _refused(sub, "hi", app, ttl=60)
    assert gone.status_code == 410
    assert gone.json()["errno"] == 106
    prefixed = {**sub, "endpoint": f"{emulator.origin}/push/gone-42"}
    assert (await _refused(prefixed, "hi", app, ttl=60)).status_code == 410
    unknown = {**sub, "endpoint": f"{emulator.origin}/push/nobody"}
    assert (await _refused(unknown, "hi", app, ttl=60)).status_code == 404


@pytest.mark.parametrize(("claims", "words"), [
    ({"sub": SUB_CLAIM, "aud": "https://push.example.net"}, "audience"),
    ({"sub": SUB_CLAIM, "exp": int(time.time()) + 48 * 3600}, "too long"),
])
async def test_refused_jwt_claims_are_401(emulator: WebPushEmulator, app: AppKey,
                                          claims: dict[str, Any], words: str) -> None:
    sub = emulator.subscribe(app.public)
    response = await _refused(sub, "hi", app, ttl=60, claims=claims)
    assert response.status_code == 401
    assert words in response.json()["message"]
    assert response.json()["errno"] == 109


async def test_expired_jwt_is_401(emulator: WebPushEmulator, app: AppKey) -> None:
    emulator.clock = lambda: time.time() + 13 * 3600  # pywebpush signs for 12 h
    sub = emulator.subscribe(app.public)
    response = await _refused(sub, "hi", app, ttl=60)
    assert response.status_code == 401
    assert "expiry" in response.json()["message"]


def _raw_post(sub: dict[str, Any], app: AppKey, *, data: bytes = b"hi",
              headers: dict[str, str] | None = None, k: str | None = None,
              drop: tuple[str, ...] = ()) -> requests.Response:
    """pywebpush's encryption and py_vapid's signature, with headers changed by hand."""
    body = WebPusher(sub).encode(data)["body"]
    vapid = Vapid02.from_raw(app.private.encode()).sign(
        {"sub": SUB_CLAIM, "aud": sub["endpoint"].split("/push/")[0],
         "exp": int(time.time()) + 3600})
    auth = vapid["Authorization"]
    if k is not None:
        auth = auth.rsplit("k=", 1)[0] + f"k={k}"
    sent = {"TTL": "60", "Content-Encoding": "aes128gcm", "Authorization": auth,
            **(headers or {})}
    for name in drop:
        sent.pop(name)
    return requests.post(sub["endpoint"], data=body, headers=sent, timeout=10)


@pytest.mark.parametrize(("change", "status", "words"), [
    ({"drop": ("TTL",)}, 400, "Missing TTL"),
    ({"headers": {"TTL": "soon"}}, 400, "Invalid TTL"),
    ({"headers": {"Content-Encoding": "aesgcm"}}, 400, "Content-Encoding"),
    ({"drop": ("Content-Encoding",)}, 400, "Content-Encoding"),
    ({"headers": {"Urgency": "urgent"}}, 400, "Urgency"),
    ({"headers": {"Topic": "t" * 33}}, 400, "Topic"),
    ({"drop": ("Authorization",)}, 401, "Missing VAPID token"),
    ({"headers": {"Authorization": "Bearer abc"}}, 401, "Unknown auth scheme"),
    ({"headers": {"Authorization": "vapid t=abc.def.ghi, k=AAAA"}}, 401, "public key"),
])
async def test_bad_headers_get_the_push_services_answers(
        emulator: WebPushEmulator, app: AppKey, change: dict[str, Any], status: int,
        words: str) -> None:
    sub = emulator.subscribe(app.public)
    response = await asyncio.to_thread(_raw_post, sub, app, **change)
    assert response.status_code == status, response.text
    assert words in response.json()["message"]
    assert emulator.received == []


async def test_signature_by_another_key_than_k_is_401(emulator: WebPushEmulator,
                                                      app: AppKey) -> None:
    sub = emulator.subscribe(app.public)
    forger = AppKey()
    response = await asyncio.to_thread(_raw_post, sub, forger, k=app.public)
    assert response.status_code == 401
    assert "signature" in response.json()["message"]


async def test_body_for_another_browser_does_not_decrypt(emulator: WebPushEmulator,
                                                         app: AppKey) -> None:
    sub = emulator.subscribe(app.public)
    other = emulator.subscribe(app.public)
    body = WebPusher(other).encode(b"not for you")["body"]
    vapid = Vapid02.from_raw(app.private.encode()).sign(
        {"sub": SUB_CLAIM, "aud": emulator.origin, "exp": int(time.time()) + 3600})
    response = await asyncio.to_thread(
        requests.post, sub["endpoint"], data=body, timeout=10,
        headers={"TTL": "60", "Content-Encoding": "aes128gcm", **vapid})
    assert response.status_code == 400
    assert "decrypt" in response.json()["message"]


async def test_push_without_payload_is_accepted(emulator: WebPushEmulator,
                                                app: AppKey) -> None:
    sub = emulator.subscribe(app.public)
    response = await _webpush(sub, None, app, ttl=60)
    assert response.status_code == 201
    assert emulator.received[0].plaintext is None


async def test_rate_limit_answers_carry_retry_after(emulator: WebPushEmulator,
                                                    app: AppKey) -> None:
    emulator.rate_429 = 1.0
    emulator.retry_after = 9
    sub = emulator.subscribe(app.public)
    response = await _refused(sub, "hi", app, ttl=60)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "9"
