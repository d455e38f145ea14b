"""The APNs emulator's own behaviour: Apple's checks with hand-made requests, its admin
surface, HTTP/2 stream limits, the provider-token rules, its log, and the command."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from clarion.emulators.apns import ApnsEmulator
from clarion.providers.apns.pool import open_connection
from clarion.providers.apns.transport import Response
from tests.integration.apns_support import (
    BUNDLE,
    KEY_ID,
    SIGNING_KEY,
    TEAM_ID,
    TOKEN,
    K,
    Pki,
    Senders,
    cert_creds,
    creds,
    emu,
    item,
    pem_of,
    pki,
    senders,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
__all__ = ["emu", "pki", "senders"]  # fixtures


# --- the emulator's own checks, with hand-made requests ------------------------------------------


def _jwt(iat: float | None = None, key: str = SIGNING_KEY, kid: str = KEY_ID) -> str:
    token = jwt.encode({"iss": TEAM_ID, "iat": int(time.time() if iat is None else iat)},
                       serialization.load_pem_private_key(key.encode(), None),  # type: ignore[arg-type]
                       algorithm="ES256", headers={"kid": kid})
    return f"bearer {token}"


VALID_JWT = _jwt()  # one token for every hand-made request (a new one each time is refused)


async def raw(emu: ApnsEmulator, pki: Pki, *, method: str = "POST",
              path: str = f"/3/device/{TOKEN}", headers: dict[str, str] | None = None,
              body: bytes = b'{"aps":{"alert":"hi"}}', auth: str | None = "valid",
              extra: list[tuple[str, str]] | None = None) -> tuple[int, str | None, Response]:
    conn = await open_connection(host="127.0.0.1", port=emu.port,
                                 ssl_context=pki.client_context(alpn=["h2"]),
                                 server_hostname="127.0.0.1", token_auth=True,
                                 connect_timeout=5, request_timeout=5,
                                 on_change=lambda _c: None)
    try:
        hs = {"apns-topic": BUNDLE, "apns-push-type": "alert", **(headers or {})}
        if auth is not None:
            hs["authorization"] = VALID_JWT if auth == "valid" else auth
        wire = [(b":method", method.encode()), (b":scheme", b"https"),
                (b":authority", b"127.0.0.1"), (b":path", path.encode())]
        wire += [(k.encode(), v.encode()) for k, v in hs.items()]
        wire += [(k.encode(), v.encode()) for k, v in (extra or [])]
        resp = await conn.submit(wire, body)
    finally:
        conn.close()
    answer = orjson.loads(resp.body) if resp.body else None
    reason = answer["reason"] if isinstance(answer, dict) else None
    return resp.status, reason, resp


@pytest.mark.parametrize(("kwargs", "status", "reason"), [
    ({}, 200, None),
    ({"method": "GET"}, 405, "MethodNotAllowed"),
    ({"path": "/2/device/" + TOKEN}, 404, "BadPath"),
    ({"path": "/3/device/"}, 400, "MissingDeviceToken"),
    ({"path": "/3/device/xyz"}, 400, "BadDeviceToken"),
    ({"path": "/3/device/" + "ab" * 10}, 400, "BadDeviceToken"),
    ({"auth": None}, 403, "MissingProviderToken"),
    ({"auth": "bearer not.a.jwt"}, 403, "InvalidProviderToken"),
    ({"auth": "EXPIRED"}, 403, "ExpiredProviderToken"),
    ({"auth": "UNKNOWN_KID"}, 403, "InvalidProviderToken"),
    ({"auth": "OTHER_KEY"}, 403, "InvalidProviderToken"),
    ({"headers": {"apns-topic": ""}}, 400, "MissingTopic"),
    ({"headers": {"apns-topic": "no dots here"}}, 400, "BadTopic"),
    ({"headers": {"apns-push-type": "sms"}}, 400, "InvalidPushType"),
    ({"headers": {"apns-priority": "7"}}, 400, "BadPriority"),
    ({"headers": {"apns-push-type": "background", "apns-priority": "10"},
      "body": b'{"aps":{"content-available":1}}'}, 400, "BadPriority"),
    ({"headers": {"apns-push-type": "background", "apns-priority": "5"}}, 400,
     "InvalidPushType"),
    ({"headers": {"apns-push-type": "background", "apns-priority": "5"},
      "body": b'{"aps":{"content-available":1}}'}, 200, None),
    ({"headers": {"apns-expiration": "tomorrow"}}, 400, "BadExpirationDate"),
    ({"headers": {"apns-collapse-id": "c" * 65}}, 400, "BadCollapseId"),
    ({"headers": {"apns-collapse-id": "c" * 64}}, 200, None),
    ({"headers": {"apns-id": "not-a-uuid"}}, 400, "BadMessageId"),
    ({"extra": [("apns-priority", "10"), ("apns-priority", "5")]}, 400, "DuplicateHeaders"),
    ({"body": b""}, 400, "PayloadEmpty"),
    ({"body": b"[1,2]"}, 400, "BadPayload"),
    ({"body": b'{"aps":{"alert":"' + b"x" * 4100 + b'"}}'}, 413, "PayloadTooLarge"),
    ({"headers": {"apns-push-type": "voip", "apns-topic": BUNDLE + ".voip"},
      "body": b'{"aps":{"alert":"' + b"x" * 4100 + b'"}}'}, 200, None),
])
async def test_emulator_checks_like_apple(emu: ApnsEmulator, pki: Pki,
                                          kwargs: dict[str, Any], status: int,
                                          reason: str | None) -> None:
    auth = kwargs.get("auth", "valid")
    if auth == "EXPIRED":
        kwargs["auth"] = _jwt(iat=time.time() - 3700)
    elif auth == "UNKNOWN_KID":
        kwargs["auth"] = _jwt(kid="NOPE000000")
    elif auth == "OTHER_KEY":
        kwargs["auth"] = _jwt(key=pem_of(ec.generate_private_key(ec.SECP256R1())))
    got_status, got_reason, resp = await raw(emu, pki, **kwargs)
    assert (got_status, got_reason) == (status, reason)
    assert resp.apns_id  # echoed or made up, on every answer
    [rec] = emu.received
    assert (rec.status, rec.reason) == (status, reason)


async def test_emulator_echoes_apns_id_and_makes_one_when_absent(emu: ApnsEmulator,
                                                                 pki: Pki) -> None:
    mine = str(uuid.uuid4())
    _, _, echoed = await raw(emu, pki, headers={"apns-id": mine})
    assert echoed.apns_id == mine
    _, _, made = await raw(emu, pki)
    assert made.apns_id
    assert uuid.UUID(made.apns_id)


async def test_dead_token_answer_carries_a_timestamp(emu: ApnsEmulator, pki: Pki) -> None:
    emu.mark_dead(TOKEN, timestamp_ms=1_700_000_000_000)
    status, reason, resp = await raw(emu, pki)
    assert (status, reason) == (410, "Unregistered")
    assert orjson.loads(resp.body)["timestamp"] == 1_700_000_000_000


async def test_production_emulator_refuses_sandbox_tokens(emu: ApnsEmulator,
                                                          pki: Pki) -> None:
    emu.environment = "production"
    emu.register_device(TOKEN, environment="sandbox")
    assert (await raw(emu, pki))[:2] == (400, "BadDeviceToken")
    emu.environment = "sandbox"
    assert (await raw(emu, pki))[:2] == (200, None)


async def test_second_new_token_within_the_window(pki: Pki) -> None:
    async with ApnsEmulator(pki=pki, token_update_window=5) as emu:
        emu.register_key(key_id=KEY_ID, team_id=TEAM_ID, key=SIGNING_KEY)
        now = time.time()
        first, second = _jwt(iat=now - 10), _jwt(iat=now)
        assert (await raw(emu, pki, auth=first))[:2] == (200, None)
        assert (await raw(emu, pki, auth=second))[:2] == (429, "TooManyProviderTokenUpdates")
        assert (await raw(emu, pki, auth=first))[:2] == (200, None)  # reusing is fine
        emu.clock = lambda: time.time() + 6
        assert (await raw(emu, pki, auth=second))[:2] == (200, None)


async def test_admin_endpoints(emu: ApnsEmulator, pki: Pki, senders: Senders) -> None:
    status, _, _ = await raw(emu, pki, path="/_emulator/dead", body=b'{"token": "%s"}'
                             % TOKEN.encode())
    assert status == 204
    [out] = await senders(emu).send(creds(), [item()])
    assert out.kind is K.INVALID_TOKEN
    _, _, resp = await raw(emu, pki, method="GET", path="/_emulator/received", body=b"")
    assert [(r["status"], r["reason"]) for r in orjson.loads(resp.body)] == [
        (410, "Unregistered")]


async def test_emulator_refuses_streams_over_its_limit(emu: ApnsEmulator, pki: Pki) -> None:
    """A client that ignores SETTINGS_MAX_CONCURRENT_STREAMS (1 before a valid JWT) gets
    RST_STREAM(REFUSED_STREAM) for the extra stream (RFC 9113 §5.1.2), not a dead connection."""
    from h2.config import H2Configuration
    from h2.connection import H2Connection
    from h2.events import ResponseReceived, SettingsAcknowledged, StreamReset

    reader, writer = await asyncio.open_connection(
        "127.0.0.1", emu.port, ssl=pki.client_context(alpn=["h2"]),
        server_hostname="127.0.0.1")
    h2 = H2Connection(H2Configuration(client_side=True))
    h2.initiate_connection()
    writer.write(h2.data_to_send())
    events: list[Any] = []
    while not any(isinstance(e, SettingsAcknowledged) for e in events):
        events += h2.receive_data(await reader.read(65535))
        writer.write(h2.data_to_send())
    headers = [(":method", "POST"), (":scheme", "https"), (":authority", "127.0.0.1"),
               (":path", f"/3/device/{TOKEN}"), ("apns-topic", BUNDLE),
               ("authorization", VALID_JWT)]
    h2.remote_settings.max_concurrent_streams = 10  # ignore the server's limit on purpose
    h2.remote_settings.acknowledge()
    h2.send_headers(1, headers)  # stream 1 stays open while stream 3 starts
    h2.send_headers(3, headers)
    h2.send_data(3, b'{"aps":{}}', end_stream=True)
    h2.send_data(1, b'{"aps":{}}', end_stream=True)
    writer.write(h2.data_to_send())
    events = []
    while sum(isinstance(e, ResponseReceived | StreamReset) for e in events) < 2:
        events += h2.receive_data(await asyncio.wait_for(reader.read(65535), 5))
    writer.close()
    resets = [e for e in events if isinstance(e, StreamReset)]
    assert [(e.stream_id, e.error_code) for e in resets] == [(3, 7)]  # REFUSED_STREAM
    assert emu.stats.refused == 1
    assert "refused" in emu.violations[0]
    assert [r.status for r in emu.received] == [200]


async def test_request_log_is_json_lines(pki: Pki, tmp_path: Path,
                                         senders: Senders) -> None:
    log = tmp_path / "apns.jsonl"
    async with ApnsEmulator(pki=pki, log=log) as emu:
        emu.register_key(key_id=KEY_ID, team_id=TEAM_ID, key=SIGNING_KEY)
        await senders(emu).send(creds(), [item(), item("dead" + "00" * 30)])
    lines = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    assert [(x["status"], x["reason"]) for x in lines] == [(200, None), (410, "Unregistered")]
    assert lines[0]["payload"]["aps"]["alert"]["title"] == "Hello"
    assert "authorization" not in lines[0]["headers"]


# --- the command ---------------------------------------------------------------------------


@pytest.fixture
def p8_file(tmp_path: Path) -> Path:
    path = tmp_path / "AuthKey_KEY1234567.p8"
    path.write_text(SIGNING_KEY)
    return path


async def test_command_runs_an_emulator(tmp_path: Path, p8_file: Path,
                                        senders: Senders) -> None:
    ca_out = tmp_path / "ca-copy.pem"
    log = tmp_path / "log.jsonl"
    script = "import typer; from clarion.emulators.apns import command; typer.run(command)"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, "--port", "0", "--key",
        f"{KEY_ID}:{TEAM_ID}:{p8_file}", "--pki-dir", str(tmp_path / "pki"), "--ca-out",
        str(ca_out), "--log", str(log), "--issue-cert", f"{BUNDLE}:sandbox",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ})
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        env = dict(part.split("=", 1) for part in line.decode().split())
        assert env["CLARION_CA_FILE"] == str(ca_out)
        sender = senders(env["CLARION_APNS_URL"], ca=ca_out)
        out = await sender.send(creds(), [item(), item("dead" + "00" * 30)])
        assert [o.kind for o in out] == [K.ACCEPTED, K.INVALID_TOKEN]
        pem = (tmp_path / "pki" / f"{BUNDLE}.pem").read_text()
        cert, marker, key = pem.partition("-----BEGIN PRIVATE KEY-----")
        cert_out = await sender.send(cert_creds(cert, marker + key), [item()])
        assert cert_out[0].kind is K.ACCEPTED
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0, err.decode()
    assert b"listening on https://127.0.0.1:" in err
    assert len(log.read_bytes().splitlines()) == 3
