"""A local Web Push service (RFC 8030 / 8291 / 8292) that also plays the subscribed browsers.

``WebPushEmulator`` is the importable async API (tests, demos); ``command`` is
``clarion emulator webpush``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clarion.emulators.webpush.cli import command
    from clarion.emulators.webpush.server import ReceivedMessage, Subscription, WebPushEmulator

# Imported on first use (PEP 562): `clarion --help` must not load the servers.
_HOME = {
    "ReceivedMessage": "clarion.emulators.webpush.server",
    "Subscription": "clarion.emulators.webpush.server",
    "WebPushEmulator": "clarion.emulators.webpush.server",
    "command": "clarion.emulators.webpush.cli",
}
__all__ = ["ReceivedMessage", "Subscription", "WebPushEmulator", "command"]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name]), name)

