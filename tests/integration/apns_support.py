"""Shared pieces of the APNs wire tests: credentials, sends, the emulator and sender fixtures."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from clarion.domain.outcomes import DeviceAddress, DeviceSend, Notification, OutcomeKind, Platform
from clarion.emulators.apns import ApnsEmulator
from clarion.emulators.tls import TestPKI as Pki
from clarion.emulators.tls import make_pki
from clarion.providers.apns import ApnsSender
from clarion.providers.base import ProviderSettings

KEY_ID = "KEY1234567"
TEAM_ID = "TEAM123456"
BUNDLE = "com.contoso.app"
TOKEN = "ab" * 32
K = OutcomeKind


def pem_of(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


SIGNING_KEY = pem_of(ec.generate_private_key(ec.SECP256R1()))


class Clock:
    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now


def creds(**over: Any) -> dict[str, Any]:
    base = {"auth": "token", "key_id": KEY_ID, "team_id": TEAM_ID, "bundle_id": BUNDLE,
            "environment": "sandbox", "signing_key": SIGNING_KEY}
    base.update(over)
    return base


def item(token: str = TOKEN, *, dry_run: bool = False, **notification: Any) -> DeviceSend:
    n = Notification(**{"title": "Hello", "body": "World", "tracking_id": "trk-1",
                        **notification})
    return DeviceSend(str(uuid.uuid4()), DeviceAddress(Platform.IOS, token), n, dry_run)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("apns-pki"))


@pytest.fixture
async def emu(pki: Pki) -> AsyncIterator[ApnsEmulator]:
    emulator = ApnsEmulator(pki=pki)
    emulator.register_key(key_id=KEY_ID, team_id=TEAM_ID, key=SIGNING_KEY)
    await emulator.start()
    yield emulator
    await emulator.stop()


class Senders:
    def __init__(self) -> None:
        self.made: list[ApnsSender] = []

    def __call__(self, emu: ApnsEmulator | str, ca: Path | None = None, **over: Any
                 ) -> ApnsSender:
        clock = over.pop("clock", time.time)
        ping = over.pop("ping_interval", 60.0)
        url = emu if isinstance(emu, str) else emu.url
        ca_file = ca if ca is not None or isinstance(emu, str) else emu.ca_file
        settings = ProviderSettings(apns_url=url, ca_file=ca_file,
                                    **{"request_timeout_seconds": 5.0, **over})
        sender = ApnsSender(settings, clock=clock, ping_interval=ping)
        self.made.append(sender)
        return sender


@pytest.fixture
async def senders() -> AsyncIterator[Senders]:
    made = Senders()
    yield made
    for sender in made.made:
        await sender.aclose()


def by_apns_id(emu: ApnsEmulator) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for rec in emu.received:
        if rec.apns_id:
            out.setdefault(rec.apns_id, []).append(rec)
    return out


def cert_creds(pem: str, key: str, environment: str = "sandbox") -> dict[str, Any]:
    return {"auth": "certificate", "bundle_id": BUNDLE, "environment": environment,
            "certificate_pem": pem, "private_key_pem": key}
