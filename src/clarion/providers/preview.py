"""The payload each platform's device receives, for message previews: built by the same
functions the senders use, so a preview is what a send would put on the wire."""

from __future__ import annotations

import orjson

from clarion.domain.outcomes import Notification, Platform
from clarion.domain.push_messages import PlatformPayload
from clarion.providers.apns import payload as apns
from clarion.providers.fcm import payload as fcm
from clarion.providers.webpush import payload as webpush


class ProviderPayloads:
    """``clarion.domain.push_messages.PayloadPreviewer`` over the real payload builders."""

    def preview(self, platform: Platform, notification: Notification, *,
                notification_block: bool) -> PlatformPayload:
        if platform is Platform.IOS:
            # Apple, "Generating a remote notification": at most 4096 bytes of JSON payload.
            body = apns.payload_dict(notification)
            size = len(orjson.dumps(body))
            return PlatformPayload("ios", body, size, apns.MAX_PAYLOAD_BYTES,
                                   size <= apns.MAX_PAYLOAD_BYTES)
        if platform is Platform.ANDROID:
            # "About FCM messages": 4096 bytes for data (and notification) together.
            shown = {"data": fcm.data_block(notification)}
            if notification_block:
                block = {"title": notification.title, "body": notification.body}
                if notification.image_url:
                    block["image"] = notification.image_url
                shown["notification"] = block
            size = fcm.payload_size(shown)
            return PlatformPayload("android", shown, size, fcm.MAX_PAYLOAD_BYTES,
                                   size <= fcm.MAX_PAYLOAD_BYTES)
        # RFC 8030 §7.2: a push service must accept 4096 bytes of (encrypted) body; RFC 8291
        # §4: the aes128gcm header (86 bytes), a padding delimiter and the 16-byte tag leave
        # at most 3993 bytes of plaintext in one record.
        plaintext = webpush.build_payload(notification)
        size = webpush.encrypted_size(len(plaintext))
        return PlatformPayload(
            "web", orjson.loads(plaintext), size, webpush.MAX_ENCRYPTED_BYTES,
            size <= webpush.MAX_ENCRYPTED_BYTES,
            note=f"{len(plaintext)} bytes of JSON, encrypted to {size} (at most "
            f"{webpush.MAX_PLAINTEXT_BYTES} bytes of JSON fit: RFC 8291 §4)")
