"""OAuth2 access tokens for FCM, one cache entry per service account key.

FCM HTTP v1 wants ``Authorization: Bearer <access token>`` obtained with the OAuth 2.0
JWT-bearer grant (RFC 7523 §2.1; developers.google.com/identity/protocols/oauth2/service-account
"Preparing to make an authorized API call"): ``POST token_uri`` with the form
``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>``, the JWT signed RS256
with the account's key (``kid`` = its ``private_key_id``) and claiming ``iss`` = the account's
email, ``scope`` = ``https://www.googleapis.com/auth/firebase.messaging``, ``aud``, ``iat`` and
``exp`` = ``iat`` + 3600. Google answers ``{"access_token", "expires_in", "token_type"}``, or an
RFC 6749 §5.2 error ``{"error", "error_description"}``. Tokens last one hour.

Why hand-written (it replaced google-auth + requests): the grant is one signed JWT and one POST,
and it must go through ``providers.outbound`` like every connection a tenant can aim (the
``token_uri`` comes from the tenant's upload): the URI is accepted only if it is Google's token
endpoint or on the operator's ``CLARION_FCM_URL`` origin (``domain.credentials``), Google's name
is resolved once and only public addresses are connected to, no redirect is followed; and the
refresh no longer needs a thread. ``aud``: Google documents it as always
``https://oauth2.googleapis.com/token`` (google-auth sends that whatever the key's ``token_uri``
says), so that is the audience for Google's endpoints, and the ``token_uri`` itself for an
emulator (the FCM emulator accepts both).

What the cache does:

- the cache key is (client_email, token_uri, private_key_id): a key rotated under the same
  email gets its own entry;
- early refresh: a token is replaced ``REFRESH_MARGIN_SECONDS`` (or half its life, if shorter)
  before it expires; while one refresh runs, other sends keep using the still-valid token;
  concurrent sends share one refresh (an ``asyncio.Lock`` per entry);
- after FCM refused a token (401), ``refresh(stale=...)`` replaces it once, unless another send
  already did;
- failures become ``TokenError`` with the outcome they mean for the whole batch (a refused key
  is a credential error naming the fix; an unreachable endpoint is retry-later). Their words are
  Clarion's: the status, the endpoint's host and a recognised OAuth error code, never the text
  the endpoint chose (``error_description`` is read to pick the explanation, never echoed).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from clarion.domain.credentials import GOOGLE_TOKEN_URIS, token_uri_refusal
from clarion.domain.netguard import OutboundPolicy
from clarion.domain.outcomes import OutcomeKind
from clarion.providers.base import ProviderSettings
from clarion.providers.outbound import (
    AddressRefused,
    OutboundClient,
    Unreachable,
    json_object,
    trusted_origins,
)

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_AUDIENCE = "https://oauth2.googleapis.com/token"
ASSERTION_LIFETIME = 3600  # Google's maximum ("a short-lived token (60 minutes)")
REFRESH_MARGIN_SECONDS = 300.0
_EXPIRY_SAFETY_SECONDS = 10.0  # never hand out a token this close to its expiry
_KEY_FIX = ("In the Firebase console open Project settings → Service accounts → Generate new "
            "private key, and upload that JSON as the app's android.service_account")
# RFC 6749 §5.2 (and §4.1.2.1's access_denied): the only error codes shown as they are.
OAUTH_ERRORS = frozenset({"invalid_request", "invalid_client", "invalid_grant",
                          "unauthorized_client", "unsupported_grant_type", "invalid_scope",
                          "access_denied"})
_RETRYABLE_ERRORS = frozenset({"temporarily_unavailable", "server_error", "internal_failure"})


class TokenError(Exception):
    """No access token: ``kind`` is the outcome of every send of the batch."""

    def __init__(self, kind: OutcomeKind, reason: str, detail: str,
                 retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class _Account:
    client_email: str
    token_uri: str
    key_id: str | None
    key: rsa.RSAPrivateKey


@dataclass(slots=True)
class _Entry:
    account: _Account
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    token: str | None = None
    refresh_at: float = 0.0
    expires_at: float = 0.0


def _invalid(reason: str) -> TokenError:
    return TokenError(OutcomeKind.CREDENTIAL_ERROR, "InvalidServiceAccount",
                      f"the app's service account JSON cannot be used ({reason}): " + _KEY_FIX)


def _account(info: Mapping[str, Any]) -> _Account:
    fields: dict[str, str] = {}
    for name in ("client_email", "token_uri", "private_key"):
        value = info.get(name)
        if not isinstance(value, str) or not value.strip():
            raise _invalid(f"it has no {name}")
        fields[name] = value
    email, token_uri, pem = fields["client_email"], fields["token_uri"], fields["private_key"]
    try:
        key = serialization.load_pem_private_key(pem.replace("\\n", "\n").encode("utf-8"),
                                                 password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise _invalid("its private_key is not a PEM private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _invalid("its private_key is not an RSA key")
    kid = info.get("private_key_id")
    return _Account(email, token_uri.strip(), kid if isinstance(kid, str) and kid else None,
                    key)


def endpoint_name(token_uri: str) -> str:
    """How messages name the token endpoint: its host (and port when not the default)."""
    try:
        netloc = urlsplit(token_uri).netloc
    except ValueError:
        return "(not a URL)"
    return netloc.rsplit("@", 1)[-1] or "(no host)"


def _explanation(code: str | None, description: str) -> str:
    """Clarion's explanation of a refused grant, chosen by what Google is known to say."""
    said = description.lower()
    if "signature" in said:
        return ("the service account key was deleted or disabled in Google Cloud: generate a "
                "new key and update the app")
    if "not found" in said or "disabled" in said or code == "unauthorized_client":
        return ("the service account was deleted or disabled in Google Cloud: "
                f"{_KEY_FIX[0].lower()}{_KEY_FIX[1:]}")
    if "short-lived" in said or "timeframe" in said:
        return ("the token request was refused as badly timed: check this server's clock "
                "(NTP); Google allows little skew")
    if code == "invalid_scope":
        return "the FCM scope was refused for this service account: " + _KEY_FIX
    return "the token endpoint refused the service account: " + _KEY_FIX


def token_failure(status: int, body: bytes, token_uri: str) -> TokenError:
    """A token endpoint's non-200 answer → the batch's outcome, in Clarion's words."""
    where = f"the OAuth token endpoint {endpoint_name(token_uri)}"
    error = json_object(body) or {}
    raw_code = error.get("error")
    code = raw_code if isinstance(raw_code, str) and raw_code in OAUTH_ERRORS else None
    description = error.get("error_description")
    description = description if isinstance(description, str) else ""
    if 300 <= status < 400:
        return TokenError(OutcomeKind.RETRY_LATER, "TokenEndpointUnavailable",
                          f"{where} answered {status}, a redirect, which Clarion does not "
                          "follow")
    if status in (408, 429) or status >= 500 or raw_code in _RETRYABLE_ERRORS:
        return TokenError(OutcomeKind.RETRY_LATER, "TokenEndpointUnavailable",
                          f"{where} is unavailable (it answered {status})")
    named = f" {code}" if code else ""
    return TokenError(OutcomeKind.CREDENTIAL_ERROR, code or "TokenRefused",
                      f"{where} answered {status}{named}: {_explanation(code, description)}")


def fcm_policy(settings: ProviderSettings) -> OutboundPolicy:
    """Public addresses only, but the operator's ``CLARION_FCM_URL`` origin (an emulator)
    connects wherever it resolves."""
    return OutboundPolicy(what="OAuth token endpoint", setting=None,
                          trusted=trusted_origins(settings.fcm_url),
                          is_public=settings.network.is_public)


class AccessTokens:
    """Cached OAuth2 access tokens for FCM, keyed by service account key."""

    def __init__(self, settings: ProviderSettings, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._now = monotonic
        self._entries: dict[tuple[str, str, str], _Entry] = {}
        self._client = OutboundClient(fcm_policy(settings), settings, limit_per_host=4)
        self.refreshes = 0  # how many grants were made (observable in tests)

    def _entry(self, info: Mapping[str, Any]) -> _Entry:
        key = (str(info.get("client_email", "")), str(info.get("token_uri", "")),
               str(info.get("private_key_id") or hashlib.sha256(
                   str(info.get("private_key", "")).encode("utf-8")).hexdigest()))
        entry = self._entries.get(key)
        if entry is None:
            account = _account(info)
            refusal = token_uri_refusal(account.token_uri, fcm_url=self._settings.fcm_url)
            if refusal is not None:
                raise TokenError(OutcomeKind.CREDENTIAL_ERROR, "TokenUriNotAllowed",
                                 f"the service account's token_uri {refusal}, so Clarion does "
                                 f"not post to it: {_KEY_FIX} (its token_uri is Google's)")
            entry = self._entries[key] = _Entry(account)
        return entry

    async def get(self, info: Mapping[str, Any]) -> str:
        """A valid access token for this service account, fetched or refreshed if due."""
        entry = self._entry(info)
        now = self._now()
        if entry.token is not None and now < entry.refresh_at:
            return entry.token
        if (entry.token is not None and entry.lock.locked()
                and now < entry.expires_at - _EXPIRY_SAFETY_SECONDS):
            return entry.token  # someone is refreshing early; the old token still works
        async with entry.lock:
            if entry.token is not None and self._now() < entry.refresh_at:
                return entry.token
            return await self._grant(entry)

    async def refresh(self, info: Mapping[str, Any], *, stale: str) -> str:
        """FCM refused ``stale``: replace it (once, however many sends saw the refusal)."""
        entry = self._entry(info)
        async with entry.lock:
            if entry.token is not None and entry.token != stale:
                return entry.token
            return await self._grant(entry)

    def _assertion(self, account: _Account) -> str:
        issued = int(time.time())
        audience = (GOOGLE_AUDIENCE if account.token_uri in GOOGLE_TOKEN_URIS
                    else account.token_uri)
        claims = {"iss": account.client_email, "scope": SCOPE, "aud": audience,
                  "iat": issued, "exp": issued + ASSERTION_LIFETIME}
        headers = {"kid": account.key_id} if account.key_id else None
        return jwt.encode(claims, account.key, algorithm="RS256", headers=headers)

    async def _grant(self, entry: _Entry) -> str:
        account = entry.account
        where = f"the OAuth token endpoint {endpoint_name(account.token_uri)}"
        form = urlencode({"grant_type": GRANT_TYPE, "assertion": self._assertion(account)})
        try:
            answer = await self._client.post(
                account.token_uri, data=form.encode("ascii"),
                headers={"Content-Type": "application/x-www-form-urlencoded"})
        except AddressRefused as exc:
            raise TokenError(OutcomeKind.RETRY_LATER, "AddressRefused",
                             f"{exc.message}; nothing was sent") from exc
        except Unreachable as exc:
            raise TokenError(OutcomeKind.RETRY_LATER, "ConnectionError",
                             f"could not reach {where} ({exc.message})") from exc
        if answer.status != 200:
            raise token_failure(answer.status, answer.body, account.token_uri)
        granted = json_object(answer.body) or {}
        token = granted.get("access_token")
        if not isinstance(token, str) or not token:
            raise TokenError(OutcomeKind.RETRY_LATER, "TokenEndpointUnavailable",
                             f"{where} answered without an access token")
        expires_in = granted.get("expires_in", 3600)
        lifetime = (float(expires_in) if isinstance(expires_in, int | float)
                    and math.isfinite(expires_in) else 3600.0)
        lifetime = min(max(lifetime, 0.0), 86_400.0)
        self.refreshes += 1
        now = self._now()
        entry.token = token
        entry.expires_at = now + lifetime
        entry.refresh_at = now + max(lifetime - REFRESH_MARGIN_SECONDS, lifetime / 2)
        return token

    async def aclose(self) -> None:
        await self._client.aclose()
