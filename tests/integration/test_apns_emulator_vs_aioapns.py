"""The APNs emulator checked with a client nobody here wrote: aioapns 4.0 (token auth).

aioapns has no setting for the host: as its own code expects, the protocol class is
subclassed (``APNS_SERVER``/``APNS_PORT``) and the pool is told to use it. It is given an SSL
context that trusts the emulator's CA and offers ALPN ``h2`` (aioapns does not set ALPN
itself). Nothing else is patched: aioapns needs ``apns-id`` echoed on every answer (it matches
answers by it) and the error reason in one DATA frame, which the emulator does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aioapns import APNs, NotificationRequest, PushType
from aioapns.connection import APNsDevelopmentClientProtocol

from clarion.emulators.apns import ApnsEmulator
from clarion.emulators.tls import TestPKI as Pki
from tests.factories import p8_key
from tests.integration.apns_support import (  # fixtures and test keys shared with the wire tests
    BUNDLE,
    KEY_ID,
    SIGNING_KEY,
    TEAM_ID,
    TOKEN,
    emu,
    pki,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
__all__ = ["emu", "pki"]  # fixtures used by name


def aioapns_client(emu: ApnsEmulator, pki: Pki, *, key: str = SIGNING_KEY) -> APNs:
    class EmulatorProtocol(APNsDevelopmentClientProtocol):
        APNS_SERVER = "127.0.0.1"
        APNS_PORT = emu.port

    client = APNs(key=key, key_id=KEY_ID, team_id=TEAM_ID, topic=BUNDLE, use_sandbox=True,
                  ssl_context=pki.client_context(alpn=["h2"]), max_connection_attempts=1)
    client.pool.protocol_class = EmulatorProtocol
    return client


@pytest.fixture
async def clients() -> AsyncIterator[list[APNs]]:
    made: list[APNs] = []
    yield made
    for client in made:
        client.pool.close()
    await asyncio.sleep(0)  # let the transports close


async def test_aioapns_send_is_accepted_and_recorded(emu: ApnsEmulator, pki: Pki,
                                                     clients: list[APNs]) -> None:
    client = aioapns_client(emu, pki)
    clients.append(client)
    message = {"aps": {"alert": {"title": "Hi", "body": "there"}, "mutable-content": 1},
               "data": {"trackingId": "t-1", "link": "https://l/1"}}
    request = NotificationRequest(device_token=TOKEN, message=message, time_to_live=60,
                                  priority=10, collapse_key="c1", push_type=PushType.ALERT)
    result = await client.send_notification(request)
    assert (result.status, result.description) == ("200", None)
    assert result.notification_id == request.notification_id
    [rec] = emu.received
    assert rec.payload == message
    assert rec.token == TOKEN
    assert rec.headers["apns-id"] == request.notification_id
    assert rec.headers["apns-topic"] == BUNDLE
    assert rec.headers["apns-push-type"] == "alert"
    assert rec.headers["apns-collapse-id"] == "c1"
    assert 50 <= int(rec.headers["apns-expiration"]) - time.time() <= 60
    assert rec.jwt is not None
    assert (rec.jwt["kid"], rec.jwt["iss"]) == (KEY_ID, TEAM_ID)


async def test_aioapns_dead_token_is_unregistered(emu: ApnsEmulator, pki: Pki,
                                                  clients: list[APNs]) -> None:
    client = aioapns_client(emu, pki)
    clients.append(client)
    emu.mark_dead(TOKEN, timestamp_ms=1_700_000_000_000)
    result = await client.send_notification(
        NotificationRequest(device_token=TOKEN, message={"aps": {"alert": "x"}}))
    assert (result.status, result.description) == ("410", "Unregistered")
    assert result.timestamp == 1_700_000_000_000
    dead_prefix = await client.send_notification(
        NotificationRequest(device_token="dead" + TOKEN[4:], message={"aps": {"alert": "x"}}))
    assert (dead_prefix.status, dead_prefix.description) == ("410", "Unregistered")


async def test_aioapns_bad_key_is_invalid_provider_token(emu: ApnsEmulator, pki: Pki,
                                                         clients: list[APNs]) -> None:
    client = aioapns_client(emu, pki, key=p8_key())  # a key the emulator never saw
    clients.append(client)
    result = await client.send_notification(
        NotificationRequest(device_token=TOKEN, message={"aps": {"alert": "x"}}))
    assert (result.status, result.description) == ("403", "InvalidProviderToken")


async def test_aioapns_background_push_rules(emu: ApnsEmulator, pki: Pki,
                                             clients: list[APNs]) -> None:
    client = aioapns_client(emu, pki)
    clients.append(client)
    background = {"aps": {"content-available": 1}}
    ok = await client.send_notification(NotificationRequest(
        device_token=TOKEN, message=background, priority=5, push_type=PushType.BACKGROUND))
    assert ok.status == "200"
    bad = await client.send_notification(NotificationRequest(
        device_token=TOKEN, message=background, priority=10, push_type=PushType.BACKGROUND))
    assert (bad.status, bad.description) == ("400", "BadPriority")


async def test_aioapns_concurrent_sends_share_one_token(emu: ApnsEmulator, pki: Pki,
                                                        clients: list[APNs]) -> None:
    client = aioapns_client(emu, pki)
    clients.append(client)
    results = await asyncio.gather(*(client.send_notification(NotificationRequest(
        device_token=TOKEN, message={"aps": {"alert": str(i)}})) for i in range(30)))
    assert {r.status for r in results} == {"200"}
    assert len(emu.received) == 30
    assert emu.violations == []
