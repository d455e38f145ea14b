"""What an APNs request carries: the JSON payload of the CIJ contract and the ``apns-*`` headers.

Pure functions, no I/O. The payload follows CIJ's contract (``aps.alert`` {title, subtitle,
body}, ``mutable-content: 1`` when there is an image, CIJ keys under a top-level ``data``
dictionary); a dry run is an invisible background push (Apple, "Pushing background updates to
your App": ``content-available: 1``, ``apns-push-type: background``, ``apns-priority: 5``).

Limits checked before sending, so that a send that can never succeed is rejected locally with a
sentence saying what to shorten (Apple, "Generating a remote notification": 4096 bytes for a
regular push; "Sending notification requests to APNs": ``apns-collapse-id`` ≤ 64 bytes).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from jh2.hpack import NeverIndexedHeaderTuple

from clarion.domain.outcomes import Notification
from clarion.ids import is_guid

MAX_PAYLOAD_BYTES = 4096
MAX_COLLAPSE_ID_BYTES = 64
# Apple device tokens are hex; CIJ accepts at most 64 characters, Apple documents that tokens
# may grow, so the sender only refuses what cannot be a token at all (and could break :path).
_HEX_TOKEN = re.compile(r"[0-9a-fA-F]{16,400}")

_DRY_RUN_BODY = orjson.dumps({"aps": {"content-available": 1}})


class PayloadProblem(Exception):
    """A send that cannot be made as asked; ``reason`` is the APNs reason it would get."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def payload_dict(notification: Notification) -> dict[str, Any]:
    """The JSON object the device receives for a visible CIJ push."""
    alert: dict[str, str] = {}
    if notification.title:
        alert["title"] = notification.title
    if notification.subtitle:
        alert["subtitle"] = notification.subtitle
    alert["body"] = notification.body
    aps: dict[str, Any] = {"alert": alert}
    if notification.image_url:
        # A notification service extension downloads the image; iOS only runs it when
        # mutable-content is 1 (Apple, "Modifying content in newly delivered notifications").
        aps["mutable-content"] = 1
    data: dict[str, str] = dict(notification.data)  # custom keys first: CIJ's keys win
    data["trackingId"] = notification.tracking_id
    if notification.link:
        data["link"] = notification.link
    if notification.original_link:
        data["originalLink"] = notification.original_link
    if notification.image_url:
        data["imageUrl"] = notification.image_url
    return {"aps": aps, "data": data}


def build_payload(notification: Notification, *, dry_run: bool) -> bytes:
    """The request body; raises ``PayloadProblem("PayloadTooLarge", …)`` over 4096 bytes."""
    if dry_run:
        return _DRY_RUN_BODY
    body = orjson.dumps(payload_dict(notification))
    if len(body) > MAX_PAYLOAD_BYTES:
        over = len(body) - MAX_PAYLOAD_BYTES
        raise PayloadProblem(
            "PayloadTooLarge",
            f"the payload is {len(body)} bytes, {over} over APNs' {MAX_PAYLOAD_BYTES}-byte "
            "limit: shorten the title/body or data",
        )
    return body


@dataclass(frozen=True, slots=True)
class RequestParts:
    """Everything of one request except the ``authorization`` header (added per round)."""

    path: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    apns_id: str | None


def check_token(token: str) -> bytes:
    """The token as it goes into ``:path``; refuses what cannot be an APNs token."""
    if not _HEX_TOKEN.fullmatch(token):
        raise PayloadProblem(
            "BadDeviceToken",
            "APNs device tokens are hexadecimal text (64 characters today); this one is "
            f"{len(token)} characters and not hex, so it was not sent: register the token the "
            "app got from registerForRemoteNotifications (hex-encoded), not an FCM token or "
            "a base64 string",
        )
    return token.encode("ascii")


@dataclass(frozen=True, slots=True)
class RequestTemplate:
    """What every device of one notification shares: the body and the headers around
    ``:path``. Built once per notification (a batch usually carries one), so that a device costs
    only its ``:path`` and ``apns-id``.

    ``:path`` and ``apns-id`` differ on every request: they are marked never-indexed so that
    HPACK keeps them out of the dynamic table, where they would only push out the headers that
    do repeat (``apns-topic``, ``authorization``, …).
    """

    notification: Notification
    dry_run: bool
    body: bytes
    head: tuple[tuple[bytes, bytes], ...]  # :method, :scheme, :authority
    tail: tuple[tuple[bytes, bytes], ...]  # apns-topic, apns-push-type, apns-priority, …

    def fits(self, notification: Notification, dry_run: bool) -> bool:
        return dry_run == self.dry_run and (notification is self.notification
                                            or notification == self.notification)

    def parts(self, delivery_id: str, token: str) -> RequestParts:
        """One device's request. Raises ``PayloadProblem`` for a token that cannot be one.

        ``apns-id`` is the delivery id (a GUID) so that a retried send carries the same id and
        can be recognised in logs; an id that is not a UUID is left out and APNs makes one.
        """
        path = b"/3/device/" + check_token(token)
        headers = [*self.head, NeverIndexedHeaderTuple(b":path", path), *self.tail]
        apns_id = delivery_id if is_guid(delivery_id) else None
        if apns_id is not None:
            headers.append(NeverIndexedHeaderTuple(b"apns-id", apns_id.encode("ascii")))
        return RequestParts(path=path, headers=headers, body=self.body, apns_id=apns_id)


def request_template(
    notification: Notification,
    *,
    dry_run: bool,
    topic: str,
    authority: bytes,
    now: Callable[[], float] = time.time,
) -> RequestTemplate:
    """The shared part of a notification's requests. Raises ``PayloadProblem`` for what APNs
    would refuse anyway (payload too large, collapse id too long)."""
    body = build_payload(notification, dry_run=dry_run)
    head = ((b":method", b"POST"), (b":scheme", b"https"), (b":authority", authority))
    tail: list[tuple[bytes, bytes]] = [(b"apns-topic", topic.encode("ascii", "replace"))]
    if dry_run:
        # Background pushes must use priority 5; expiration 0 = try once, never store.
        tail += [(b"apns-push-type", b"background"), (b"apns-priority", b"5"),
                 (b"apns-expiration", b"0")]
    else:
        tail += [(b"apns-push-type", b"alert"),
                 (b"apns-priority", b"10" if notification.priority == "high" else b"5")]
        ttl = notification.ttl_seconds
        if ttl is not None:
            expiration = 0 if ttl <= 0 else int(now()) + ttl
            tail.append((b"apns-expiration", str(expiration).encode("ascii")))
        if notification.collapse_key:
            collapse = notification.collapse_key.encode("utf-8")
            if len(collapse) > MAX_COLLAPSE_ID_BYTES:
                raise PayloadProblem(
                    "BadCollapseId",
                    f"the collapse key is {len(collapse)} bytes, APNs allows at most "
                    f"{MAX_COLLAPSE_ID_BYTES} (apns-collapse-id): use a shorter collapse key",
                )
            tail.append((b"apns-collapse-id", collapse))
    return RequestTemplate(notification=notification, dry_run=dry_run, body=body, head=head,
                           tail=tuple(tail))


def request_parts(
    *,
    delivery_id: str,
    token: str,
    notification: Notification,
    dry_run: bool,
    topic: str,
    authority: bytes,
    now: Callable[[], float] = time.time,
) -> RequestParts:
    """Build one request (``request_template`` + ``RequestTemplate.parts``). Raises
    ``PayloadProblem`` for what APNs would refuse anyway."""
    check_token(token)  # a bad token is reported as such even when the payload is bad too
    template = request_template(notification, dry_run=dry_run, topic=topic,
                                authority=authority, now=now)
    return template.parts(delivery_id, token)
