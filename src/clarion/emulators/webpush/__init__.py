"""A local Web Push service (RFC 8030 / 8291 / 8292) that also plays the subscribed browsers.

``WebPushEmulator`` is the importable async API (tests, demos); ``command`` is
``clarion emulator webpush``.
"""

from clarion.emulators.webpush.cli import command
from clarion.emulators.webpush.server import ReceivedMessage, Subscription, WebPushEmulator

__all__ = ["ReceivedMessage", "Subscription", "WebPushEmulator", "command"]
