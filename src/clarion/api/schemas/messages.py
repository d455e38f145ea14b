"""Wire schemas of ``/v1/orgs/{org_id}/messages`` and ``/v1/orgs/{org_id}/settings``: the
domain's push message document (one definition: the API validates it once, templates
included) and the preview's shape."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from clarion.domain.push_messages import PushMessageIn, PushMessageRead
from clarion.services.messages import Preview

__all__ = ["PlatformPayloadRead", "PreviewRead", "PreviewRequest", "PushMessageIn",
           "PushMessageRead", "RenderedMessageRead", "TestSendRequest"]


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(max_length=100, description="The person the message is rendered for.")
    trigger_data: dict[str, Any] | None = Field(
        None, max_length=100, description="Values of placeholders whose source is trigger.")


class TestSendRequest(PreviewRequest):
    pass


class RenderedMessageRead(BaseModel):
    title: str
    subtitle: str
    body: str
    image_url: str | None
    link: str | None = Field(description="The on-click URL (a send gives devices its tracked "
                             "form; the payloads below show that).")
    data: dict[str, str]
    ttl_seconds: int
    priority: str
    collapse_key: str | None


class PlatformPayloadRead(BaseModel):
    platform: str = Field(description="ios, android or web.")
    payload: dict[str, Any] = Field(description="What the device receives (APNs JSON, FCM data "
                                    "and notification, Web Push plaintext JSON).")
    bytes: int = Field(description="The size the provider counts (Web Push: once encrypted).")
    limit: int = Field(description="The provider's limit: APNs 4096, FCM 4096, Web Push 4096 "
                       "encrypted (3993 bytes of JSON, RFC 8291 §4).")
    fits: bool
    note: str | None = None


class PreviewRead(BaseModel):
    message_id: str
    user_id: str
    message: RenderedMessageRead
    platforms: list[PlatformPayloadRead]

    @staticmethod
    def of(preview: Preview) -> PreviewRead:
        return PreviewRead(
            message_id=preview.message_id, user_id=preview.user_id,
            message=RenderedMessageRead.model_validate(preview.message.as_dict()),
            platforms=[PlatformPayloadRead(platform=p.platform, payload=p.payload,
                                           bytes=p.bytes, limit=p.limit, fits=p.fits,
                                           note=p.note) for p in preview.platforms])
