"""Wire schemas of ``/v1/orgs/{org_id}/apps``.

Request models describe the configuration document for the API reference and reject wrong
JSON types; value rules (a Key ID of 10 characters, an environment of sandbox/production, a
service account instead of google-services.json, ...) are checked by
``clarion.domain.credentials`` so every such mistake gets a message naming the fix, not a bare
422. Response models have fixed fields: a secret cannot leak through an extra key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from clarion.domain import apps as domain
from clarion.domain.outcomes import Platform


class _In(BaseModel):
    # Unknown keys pass through to the domain checks, which name the key and the fix (a
    # service account pasted as the whole android object, a typo) instead of a bare 422.
    model_config = ConfigDict(extra="allow")


class IosConfig(_In):
    auth: str | None = Field(None, description="`token` (a .p8 key, recommended) or "
                             "`certificate` (a .p12). Inferred from the credential when absent.")
    signing_key: str | None = Field(None, description="Content of AuthKey_<KeyID>.p8, with or "
                                    "without line breaks and BEGIN/END lines. Write-only.")
    key_id: str | None = Field(None, description="The key's 10-character Key ID.")
    team_id: str | None = Field(None, description="The 10-character Apple Team ID.")
    bundle_id: str | None = Field(None, description="Bundle identifier, e.g. com.contoso.app.")
    environment: str | None = Field(None, description="`sandbox` or `production`.")
    certificate_p12: str | None = Field(None, description="base64 of the .p12 (certificate "
                                        "auth). Write-only.")
    certificate_password: str | None = Field(None, description="The .p12 password. Write-only.")


class AndroidConfig(_In):
    service_account: dict[str, Any] | str | None = Field(
        None, description="The service account key JSON (Firebase console → Project settings "
        "→ Service accounts → Generate new private key), as an object or a JSON string. "
        "Write-only. Not google-services.json.")
    notification_block: bool | None = Field(
        None, description="Send FCM notification messages (shown by the system) instead of "
        "data messages. Default false.")


class WebConfig(_In):
    vapid_subject: str | None = Field(None, description="mailto: or https: contact (RFC 8292).")
    vapid_private_key: str | None = Field(
        None, description="Raw 32-byte P-256 private key in base64url, or PEM. Generated when "
        "absent. Write-only.")
    vapid_public_key: str | None = Field(
        None, description="Optional; must match the private key.")


class AppSettingsUpdate(_In):
    dry_run_on_register: bool | None = Field(
        None, description="Send an invisible test push before storing a device (default true).")
    token_owner_policy: str | None = Field(
        None, description="`move` (default): a token registered to a new person leaves the "
        "previous one; `allow`: several people may hold one token (CIJ's behaviour).")
    max_devices_per_person: int | None = Field(
        None, description="1 to 1000 (default 10); registering one more evicts the oldest.")


class AppUpdate(_In):
    """Every key is optional. A platform object is merged over the stored one (write-only
    secrets you leave out are kept); `null` removes the platform; settings are merged."""

    name: str | None = None
    ios: IosConfig | None = None
    android: AndroidConfig | None = None
    web: WebConfig | None = None
    settings: AppSettingsUpdate | None = None

    def document(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class AppCreate(AppUpdate):
    name: str = Field(description="1 to 200 characters.")


class ApiTokenCreate(_In):
    name: str = Field("default", description="What uses the token, e.g. backend-prod.")


# --- responses -----------------------------------------------------------------------------


class IosPublicRead(BaseModel):
    auth: str
    bundle_id: str
    environment: str
    key_id: str | None = None
    team_id: str | None = None
    certificate_subject: str | None = None
    certificate_expires_at: str | None = None


class AndroidPublicRead(BaseModel):
    project_id: str
    client_email: str
    token_uri: str
    notification_block: bool = False


class WebPublicRead(BaseModel):
    vapid_subject: str
    vapid_public_key: str = Field(description="base64url uncompressed P-256 point: pass it as "
                                  "applicationServerKey to pushManager.subscribe().")


class CredentialStatusRead(BaseModel):
    state: str = Field(description="valid (checked locally) | invalid | unchecked")
    reason: str | None
    checked_at: str


class AppSettingsRead(BaseModel):
    dry_run_on_register: bool
    token_owner_policy: str
    max_devices_per_person: int


class AppRead(BaseModel):
    id: str
    org_id: str
    name: str
    ios: IosPublicRead | None
    android: AndroidPublicRead | None
    web: WebPublicRead | None
    settings: AppSettingsRead
    credential_status: dict[str, CredentialStatusRead]
    api_token_count: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, app: domain.AppRead) -> AppRead:
        p = app.platforms
        return cls(
            id=app.id, org_id=app.org_id, name=app.name,
            ios=IosPublicRead(**p[Platform.IOS]) if Platform.IOS in p else None,
            android=AndroidPublicRead(**p[Platform.ANDROID]) if Platform.ANDROID in p else None,
            web=WebPublicRead(**p[Platform.WEB]) if Platform.WEB in p else None,
            settings=AppSettingsRead(**app.settings.as_dict()),
            credential_status={k.value: CredentialStatusRead(**v.as_dict())
                               for k, v in app.credential_status.items()},
            api_token_count=app.api_token_count,
            created_at=app.created_at, updated_at=app.updated_at,
        )


class AppCreatedRead(BaseModel):
    id: str = Field(description="The app id (CIJ's MobileAppId).")
    app: AppRead
    api_token: str = Field(description="The app's first API token. Shown once: keep it.")


class ApiTokenRead(BaseModel):
    id: str
    app_id: str
    name: str
    prefix: str = Field(description="The token's first characters, to tell tokens apart.")
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, token: domain.ApiTokenRead) -> ApiTokenRead:
        return cls(id=token.id, app_id=token.app_id, name=token.name, prefix=token.prefix,
                   created_at=token.created_at, revoked_at=token.revoked_at)


class ApiTokenCreatedRead(ApiTokenRead):
    token: str = Field(description="The token value. Shown once: keep it.")

    @classmethod
    def created(cls, created: domain.ApiTokenCreated) -> ApiTokenCreatedRead:
        return cls(**ApiTokenRead.of(created.token).model_dump(), token=created.value)


class DeveloperInfoRead(BaseModel):
    public_url: str
    org_id: str
    app_id: str = Field(description="CIJ's MobileAppId.")
    app_name: str
    platforms: list[str]
    endpoints: domain.Endpoints
    web_vapid_public_key: str | None
    api_token_count: int
    example_registration: dict[str, Any] = Field(
        description="A body for the devices endpoint, with placeholders to replace.")

    @classmethod
    def of(cls, info: domain.DeveloperInfo) -> DeveloperInfoRead:
        return cls(
            public_url=info.public_url, org_id=info.org_id, app_id=info.app_id,
            app_name=info.app_name, platforms=[p.value for p in info.platforms],
            endpoints=info.endpoints,
            web_vapid_public_key=info.web_vapid_public_key,
            api_token_count=info.api_token_count,
            example_registration=info.example_registration,
        )
