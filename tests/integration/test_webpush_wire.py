"""WebPushSender against the Web Push emulator over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from clarion.domain.outcomes import (
    DeviceAddress,
    DeviceSend,
    Notification,
    OutcomeKind,
    Platform,
)
from clarion.emulators.tls import make_pki
from clarion.emulators.webpush import WebPushEmulator
from clarion.providers.base import ProviderSettings
from clarion.providers.webpush import WebPushSender
from clarion.providers.webpush.crypto import b64url_encode
from clarion.providers.webpush.payload import DEFAULT_TTL_SECONDS, MAX_PLAINTEXT_BYTES

pytestmark = pytest.mark.integration

SUBJECT = "mailto:ops@example.com"


def _credentials(key: ec.EllipticCurvePrivateKey | None = None) -> dict[str, Any]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.X962,
                                           serialization.PublicFormat.UncompressedPoint)
    return {"vapid_subject": SUBJECT, "vapid_public_key": b64url_encode(public),
            "vapid_private_key": b64url_encode(
                key.private_numbers().private_value.to_bytes(32, "big"))}


def _send(delivery_id: str, sub: dict[str, Any], note: Notification | None = None, *,
          dry_run: bool = False) -> DeviceSend:
    device = DeviceAddress(Platform.WEB, sub["endpoint"], web_keys=sub["keys"])
    return DeviceSend(delivery_id, device, note or Notification(title="T", body="B"),
                      dry_run=dry_run)


@pytest.fixture
async def emulator() -> AsyncIterator[WebPushEmulator]:
    emu = WebPushEmulator()
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
async def sender() -> AsyncIterator[WebPushSender]:
    s = WebPushSender(ProviderSettings(webpush_allow_private=True, request_timeout_seconds=5.0))
    try:
        yield s
    finally:
        await s.aclose()


@pytest.fixture
def creds() -> dict[str, Any]:
    return _credentials()


async def test_message_is_accepted_and_decrypts_to_the_cij_payload(
        emulator: WebPushEmulator, sender: WebPushSender, creds: dict[str, Any]) -> None:
    sub = emulator.subscribe(creds["vapid_public_key"])
    note = Notification(title="Sale", subtitle="Today", body="50% off", image_url="https://i/p.png",
                        link="https://t.example/c/1", original_link="https://shop.example/",
                        tracking_id="trk-1", data={"campaign": "spring"}, collapse_key="spring")
    [out] = await sender.send(creds, [_send("d1", sub, note)])
    assert out.kind is OutcomeKind.ACCEPTED, out
    assert out.provider_id is not None
    assert out.provider_id.startswith(f"{emulator.origin}/m/")
    [msg] = emulator.received
    assert msg.json == {"title": "Sale", "subtitle": "Today", "body": "50% off",
                        "imageUrl": "https://i/p.png", "link": "https://t.example/c/1",
                        "originalLink": "https://shop.example/", "trackingId": "trk-1",
                        "data": {"campaign": "spring"}}
    assert (msg.ttl, msg.urgency, msg.topic) == (DEFAULT_TTL_SECONDS, "high", "spring")
    assert msg.vapid_claims["aud"] == emulator.origin
    assert msg.vapid_claims["sub"] == SUBJECT
    assert msg.vapid_key == creds["vapid_public_key"]


async def test_ttl_urgency_and_a_derived_topic(
        emulator: WebPushEmulator, sender: WebPushSender, creds: dict[str, Any]) -> None:
    sub = emulator.subscribe(creds["vapid_public_key"])
    note = Notification(title="T", body="B", ttl_seconds=60, priority="normal",
                        collapse_key="a collapse key that is not a valid RFC 8030 topic!")
    [out] = await sender.send(creds, [_send("d1", sub, note)])
    assert out.kind is OutcomeKind.ACCEPTED, out
    [msg] = emulator.received
    assert (msg.ttl, msg.urgency) == (60, "normal")
    assert msg.topic is not None
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", msg.topic)


async def test_dry_run_sends_ttl_zero_and_a_dry_run_payload(
        emulator: WebPushEmulator, sender: WebPushSender, creds: dict[str, Any]) -> None:
    sub = emulator.subscribe(creds["vapid_public_key"])
    [out] = await sender.send(creds, [_send("d1", sub, dry_run=True)])
    assert out.kind is OutcomeKind.ACCEPTED, out
    [msg] = emulator.received
    assert msg.json == {"dryRun": True}
    assert (msg.ttl, msg.topic) == (0, None)


async def test_every_error_class_in_one_batch(
        emulator: WebPushEmulator, sender: WebPushSender, creds: dict[str, Any]) -> None:
    good = [emulator.subscribe(creds["vapid_public_key"]) for _ in range(10)]
    gone = emulator.subscribe(creds["vapid_public_key"])
    emulator.mark_gone(gone["endpoint"])
    other_app = emulator.subscribe(_credentials()["vapid_public_key"])
    unknown = {**good[0], "endpoint": f"{emulator.origin}/push/never-made"}
    gone_prefix = {**good[0], "endpoint": f"{emulator.origin}/push/gone-123"}
    broken_keys = {**good[0], "keys": {"p256dh": "AAAA", "auth": "AAAA"}}
    not_url = {**good[0], "endpoint": "ftp://example.com/x"}
    too_big = Notification(title="T", body="x" * MAX_PLAINTEXT_BYTES)
    batch = [_send(f"g{i}", s) for i, s in enumerate(good)] + [
        _send("gone", gone), _send("mismatch", other_app), _send("unknown", unknown),
        _send("gone-prefix", gone_prefix), _send("keys", broken_keys),
        _send("url", not_url), _send("big", good[0], too_big)]
    outcomes = {o.delivery_id: o for o in await sender.send(creds, batch)}
    assert len(outcomes) == len(batch)
    for i in range(10):
        assert outcomes[f"g{i}"].kind is OutcomeKind.ACCEPTED
    assert (outcomes["gone"].kind, outcomes["gone"].reason) == (OutcomeKind.INVALID_TOKEN, "410")
    assert outcomes["gone-prefix"].kind is OutcomeKind.INVALID_TOKEN
    assert (outcomes["unknown"].kind, outcomes["unknown"].reason) == (
        OutcomeKind.INVALID_TOKEN, "404")
    assert outcomes["mismatch"].kind is OutcomeKind.MISMATCH
    assert "mismatch" in (outcomes["mismatch"].detail or "").lower()
    assert (outcomes["keys"].kind, outcomes["keys"].reason) == (
        OutcomeKind.INVALID_TOKEN, "InvalidSubscriptionKeys")
    assert (outcomes["url"].kind, outcomes["url"].reason) == (
        OutcomeKind.INVALID_TOKEN, "InvalidEndpoint")
    big = outcomes["big"]
    assert (big.kind, big.reason) == (OutcomeKind.REJECTED, "PayloadTooLarge")
    assert "over the 4096 bytes" in (big.detail or "")
    # refused locally: only the 14 well-formed sends reached the push service
    assert emulator.pushes == 14
    assert len(emulator.received) == 10


async def test_wrong_app_credentials_send_nothing(
        emulator: WebPushEmulator, sender: WebPushSender, creds: dict[str, Any]) -> None:
    sub = emulator.subscribe(creds["vapid_public_key"])
    mixed = {**creds, "vapid_public_key": _credentials()["vapid_public_key"]}
    no_subject = {**creds, "vapid_subject": ""}
    for bad in (mixed, no_subject, {**creds, "vapid_private_key": "nope"}):
        outcomes = await sender.send(bad, [_send("a", sub), _send("b", sub)])
        assert [o.kind for o in outcomes] == [OutcomeKind.CREDENTIAL_ERROR] * 2
        assert outcomes[0].reason == "InvalidVapidKey"
    assert emulator.pushes == 0


@pytest.mark.parametrize(("skew", "words"), [
    # Clarion's words for the emulator's "Invalid VAPID expiry" / "... expiration is too long"
    (13 * 3600, "clock"),  # the push service's clock is 13 h ahead: exp is in its past
    (-13 * 3600, "clock"),  # 13 h behind: exp is more than 24 h away
])
async def test_refused_jwt_is_a_credential_error(
        emulator: WebPushEmulator, sender: WebPushSender, creds: dict[str, Any],
        skew: float, words: str) -> None:
    emulator.clock = lambda: time.time() + skew
    sub = emulator.subscribe(creds["vapid_public_key"])
    [out] = await sender.send(creds, [_send("d", sub)])
    assert (out.kind, out.reason) == (OutcomeKind.CREDENTIAL_ERROR, "401")
    assert words in (out.detail or "")


@pytest.mark.parametrize(("knob", "status"), [("rate_429", "429"), ("rate_503", "503")])
async def test_throttling_is_retried_after_what_the_service_says(
        emulator: WebPushEmulator, sender: WebPushSender, creds: dict[str, Any],
        knob: str, status: str) -> None:
    setattr(emulator, knob, 1.0)
    emulator.retry_after = 7
    sub = emulator.subscribe(creds["vapid_public_key"])
    [out] = await sender.send(creds, [_send("d", sub)])
    assert (out.kind, out.reason, out.retry_after_seconds) == (
        OutcomeKind.RETRY_LATER, status, 7.0)
    assert emulator.received == []


async def test_seeded_fault_rate_hits_a_share_of_sends(creds: dict[str, Any]) -> None:
    emu = WebPushEmulator(rate_503=0.3, seed=42)
    await emu.start()
    sender = WebPushSender(ProviderSettings(webpush_allow_private=True))
    try:
        subs = [emu.subscribe(creds["vapid_public_key"]) for _ in range(100)]
        outcomes = await sender.send(creds, [_send(str(i), s) for i, s in enumerate(subs)])
    finally:
        await sender.aclose()
        await emu.stop()
    retried = sum(o.kind is OutcomeKind.RETRY_LATER for o in outcomes)
    assert 15 <= retried <= 45
    assert sum(o.kind is OutcomeKind.ACCEPTED for o in outcomes) == 100 - retried


async def test_slow_answer_becomes_a_timeout_retry(
        emulator: WebPushEmulator, creds: dict[str, Any]) -> None:
    emulator.latency_ms = 2000
    sender = WebPushSender(ProviderSettings(webpush_allow_private=True,
                                            request_timeout_seconds=0.3))
    try:
        sub = emulator.subscribe(creds["vapid_public_key"])
        [out] = await sender.send(creds, [_send("d", sub)])
    finally:
        await sender.aclose()
    assert (out.kind, out.reason) == (OutcomeKind.RETRY_LATER, "Timeout")


async def test_dropped_connections_are_retried_and_the_rest_delivered(
        emulator: WebPushEmulator, sender: WebPushSender, creds: dict[str, Any]) -> None:
    emulator.drop_every = 3
    subs = [emulator.subscribe(creds["vapid_public_key"]) for _ in range(9)]
    outcomes = await sender.send(creds, [_send(str(i), s) for i, s in enumerate(subs)])
    kinds = [o.kind for o in outcomes]
    assert kinds.count(OutcomeKind.RETRY_LATER) == 3
    assert kinds.count(OutcomeKind.ACCEPTED) == 6
    assert {o.reason for o in outcomes if o.kind is OutcomeKind.RETRY_LATER} == {
        "ConnectionError"}
    # the sender keeps working on new connections afterwards
    emulator.drop_every = 0
    [again] = await sender.send(creds, [_send("x", subs[0])])
    assert again.kind is OutcomeKind.ACCEPTED


async def test_refused_connection_is_a_retry(sender: WebPushSender,
                                             creds: dict[str, Any]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sub = {"endpoint": f"http://127.0.0.1:{port}/push/x",
           "keys": WebPushEmulator().subscribe()["keys"]}
    [out] = await sender.send(creds, [_send("d", sub)])
    assert (out.kind, out.reason) == (OutcomeKind.RETRY_LATER, "ConnectionError")


async def test_tls_with_the_emulator_ca(tmp_path: Path, creds: dict[str, Any]) -> None:
    pki = make_pki(tmp_path / "pki")
    emu = WebPushEmulator(ssl_context=pki.server_context())
    await emu.start()
    trusting = WebPushSender(ProviderSettings(webpush_allow_private=True, ca_file=pki.ca_file))
    untrusting = WebPushSender(ProviderSettings(webpush_allow_private=True))
    try:
        sub = emu.subscribe(creds["vapid_public_key"])
        assert sub["endpoint"].startswith("https://127.0.0.1:")
        [ok] = await trusting.send(creds, [_send("d", sub)])
        [refused] = await untrusting.send(creds, [_send("d", sub)])
    finally:
        await trusting.aclose()
        await untrusting.aclose()
        await emu.stop()
    assert ok.kind is OutcomeKind.ACCEPTED, ok
    assert emu.received[0].vapid_claims["aud"] == emu.origin
    assert (refused.kind, refused.reason) == (OutcomeKind.RETRY_LATER, "TLSError")


async def test_vapid_header_is_signed_once_and_reused(
        emulator: WebPushEmulator, sender: WebPushSender, creds: dict[str, Any]) -> None:
    subs = [emulator.subscribe(creds["vapid_public_key"]) for _ in range(30)]
    for chunk in (subs[:10], subs[10:]):
        outcomes = await sender.send(creds, [_send(str(i), s) for i, s in enumerate(chunk)])
        assert {o.kind for o in outcomes} == {OutcomeKind.ACCEPTED}
    assert sender.vapid_signatures == 1
    assert len({r["vapid"]["token_sha256"] for r in emulator.requests}) == 1
    # another app on the same push service gets its own header
    other = _credentials()
    sub = emulator.subscribe(other["vapid_public_key"])
    [out] = await sender.send(other, [_send("o", sub)])
    assert out.kind is OutcomeKind.ACCEPTED
    assert sender.vapid_signatures == 2


async def test_in_flight_requests_are_bounded_by_the_pool(
        emulator: WebPushEmulator, creds: dict[str, Any]) -> None:
    emulator.latency_ms = 30
    sender = WebPushSender(ProviderSettings(webpush_allow_private=True, webpush_connections=3))
    try:
        subs = [emulator.subscribe(creds["vapid_public_key"]) for _ in range(12)]
        outcomes = await sender.send(creds, [_send(str(i), s) for i, s in enumerate(subs)])
    finally:
        await sender.aclose()
    assert {o.kind for o in outcomes} == {OutcomeKind.ACCEPTED}
    assert emulator.peak_in_flight == 3


async def test_emulator_http_surface_and_log(tmp_path: Path, creds: dict[str, Any],
                                             sender: WebPushSender) -> None:
    log = tmp_path / "webpush.jsonl"
    emu = WebPushEmulator(log_path=log)
    await emu.start()
    try:
        async with aiohttp.ClientSession() as http:
            resp = await http.post(f"{emu.origin}/_emulator/subscribe",
                                   json={"applicationServerKey": creds["vapid_public_key"]})
            assert resp.status == 201
            sub = await resp.json()
            assert set(sub["keys"]) == {"p256dh", "auth"}
            bad = await http.post(f"{emu.origin}/_emulator/subscribe",
                                  json={"applicationServerKey": "AAAA"})
            assert bad.status == 400
            [out] = await sender.send(creds, [_send("d", sub, Notification(title="Hi"))])
            assert out.kind is OutcomeKind.ACCEPTED
            received = await (await http.get(f"{emu.origin}/_emulator/received")).json()
            assert received["messages"][0]["payload"]["title"] == "Hi"
            gone = await http.post(f"{emu.origin}/_emulator/gone",
                                   json={"endpoint": sub["endpoint"]})
            assert gone.status == 204
            [out] = await sender.send(creds, [_send("d", sub)])
            assert out.kind is OutcomeKind.INVALID_TOKEN
    finally:
        await emu.stop()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["status"] for line in lines] == [201, 410]
    assert lines[0]["payload"]["title"] == "Hi"
    assert lines[0]["vapid"]["sub"] == SUBJECT
    assert lines[1]["answer"]["errno"] == 106


async def test_command_runs_the_emulator(tmp_path: Path, creds: dict[str, Any],
                                         sender: WebPushSender) -> None:
    """``clarion emulator webpush --tls --ca-out --log`` as a person starts it."""
    code = "import typer; from clarion.emulators.webpush import command; typer.run(command)"
    ca = tmp_path / "ca.pem"
    log = tmp_path / "log.jsonl"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, "--port", "0", "--tls", "--ca-out", str(ca),
        "--log", str(log), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        origin = None
        while origin is None:
            line = (await asyncio.wait_for(proc.stdout.readline(), timeout=20)).decode()
            assert line, "the emulator exited"
            found = re.search(r"on (https://127\.0\.0\.1:\d+)", line)
            origin = found.group(1) if found else None
        ssl_ctx = ssl.create_default_context(cafile=str(ca))
        async with aiohttp.ClientSession() as http:
            resp = await http.post(f"{origin}/_emulator/subscribe", ssl=ssl_ctx,
                                   json={"applicationServerKey": creds["vapid_public_key"]})
            sub = await resp.json()
        tls_sender = WebPushSender(ProviderSettings(webpush_allow_private=True, ca_file=ca))
        try:
            [out] = await tls_sender.send(creds, [_send("d", sub)])
        finally:
            await tls_sender.aclose()
        assert out.kind is OutcomeKind.ACCEPTED, out
        assert json.loads(log.read_text().splitlines()[0])["payload"] == {
            "title": "T", "body": "B", "trackingId": ""}
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=10)
