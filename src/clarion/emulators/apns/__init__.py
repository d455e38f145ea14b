"""A local APNs: HTTP/2 over TLS with Apple's checks, error answers and injectable faults.

``ApnsEmulator`` (``server``) for tests and demos, ``command`` (``cli``) for
``clarion emulator apns``; ``verifier`` holds the request checks, ``keys`` the JWT and
client-certificate rules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clarion.emulators.apns.cli import command
    from clarion.emulators.apns.keys import IssuedCertificate
    from clarion.emulators.apns.records import Received, Stats
    from clarion.emulators.apns.server import ApnsEmulator

# Imported on first use (PEP 562): `clarion --help` must not load the servers.
_HOME = {
    "ApnsEmulator": "clarion.emulators.apns.server",
    "IssuedCertificate": "clarion.emulators.apns.keys",
    "Received": "clarion.emulators.apns.records",
    "Stats": "clarion.emulators.apns.records",
    "command": "clarion.emulators.apns.cli",
}
__all__ = ["ApnsEmulator", "IssuedCertificate", "Received", "Stats", "command"]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name]), name)

