"""A local APNs: HTTP/2 over TLS with Apple's checks, error answers and injectable faults.

``ApnsEmulator`` (``server``) for tests and demos, ``command`` (``cli``) for
``clarion emulator apns``; ``verifier`` holds the request checks, ``keys`` the JWT and
client-certificate rules.
"""

from clarion.emulators.apns.cli import command
from clarion.emulators.apns.keys import IssuedCertificate
from clarion.emulators.apns.records import Received, Stats
from clarion.emulators.apns.server import ApnsEmulator

__all__ = ["ApnsEmulator", "IssuedCertificate", "Received", "Stats", "command"]
