"""Web Push delivery: RFC 8030 (protocol), RFC 8291 (encryption), RFC 8292 (VAPID).

``WebPushSender(settings)`` implements the ``Sender`` port; ``payload``, ``crypto``, ``vapid``
and ``errors`` are its parts, each owning one RFC concern.
"""

from clarion.providers.webpush.sender import WebPushSender

__all__ = ["WebPushSender"]
