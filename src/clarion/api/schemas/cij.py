"""Wire shapes of the CIJ-compatible endpoints, for the OpenAPI document.

The routes parse bodies themselves (``clarion.domain.registration``) so that every bad body
gets CIJ's 400 with a precise message; these models only describe the contract.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Cij(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")


class WebPushKeys(_Cij):
    p256dh: str = Field(description="base64url P-256 public key of the browser (65 bytes)")
    auth: str = Field(description="base64url authentication secret (16 bytes)")


class PushSubscription(_Cij):
    endpoint: str
    keys: WebPushKeys


class DeviceRegistration(_Cij):
    MobileAppId: str = Field(description="The app id from the developer information.")
    UserId: str = Field(description="A contact, lead or profile id of the organization.")
    ApiToken: str = Field(description="An API token of the app.")
    ApnsDeviceToken: str | None = Field(None, description="iOS: hex APNs token (≤ 64 chars).")
    FcmDeviceToken: str | None = Field(None, description="Android: FCM registration token.")
    WebPushSubscription: PushSubscription | None = Field(
        None, description="Browsers (Clarion extension): PushSubscription.toJSON().")


class DeviceCleanup(_Cij):
    MobileAppId: str
    ApiToken: str
    UserId: str
    DeviceToken: str | None = Field(
        None, description="Leave out to remove every device of the user for the app.")


class StatusQuery(_Cij):
    RegistrationRequestIds: list[str]
    MobileAppId: str
    ApiToken: str


class Tracked(BaseModel):
    RegistrationRequestId: str


class StatusEntry(BaseModel):
    RegistrationRequestId: str
    Status: str = Field(description="Pending, Success or Failed")
    FailureReason: str | None = None


class Interaction(_Cij):
    TrackingId: str
    DeviceToken: str
    PushNotificationStatus: int | str
