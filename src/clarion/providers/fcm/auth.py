"""OAuth2 access tokens for FCM, one cache entry per service account key.

FCM HTTP v1 wants ``Authorization: Bearer <access token>`` obtained with the OAuth 2.0
JWT-bearer grant (RFC 7523 §2.1) at the service account's ``token_uri``, the assertion signed
RS256 with the account's key, scope ``https://www.googleapis.com/auth/firebase.messaging``.
Tokens last one hour.

``google-auth`` does the grant (it builds and signs the assertion exactly as Google expects and
posts it to whatever ``token_uri`` the key names, ``http://127.0.0.1`` emulators included). It
is synchronous, so a refresh runs in a worker thread: once an hour per service account, never
on the per-send path. What is ours:

- the cache key is (client_email, token_uri, private_key_id): a key rotated under the same
  email gets its own entry;
- early refresh: a token is replaced ``REFRESH_MARGIN_SECONDS`` (or half its life, if shorter)
  before it expires; while one refresh runs, other sends keep using the still-valid token;
  concurrent sends share one refresh (an ``asyncio.Lock`` per entry);
- after FCM refused a token (401), ``refresh(stale=...)`` replaces it once, unless another send
  already did;
- failures become ``TokenError`` with the outcome they mean for the whole batch (a refused key
  is a credential error naming the fix; an unreachable endpoint is retry-later).
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import google.auth.exceptions
import requests
import requests.adapters
from google.auth.transport.requests import Request
from google.oauth2 import service_account

from clarion.domain.outcomes import OutcomeKind
from clarion.providers.base import ProviderSettings, client_ssl_context

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
REFRESH_MARGIN_SECONDS = 300.0
_EXPIRY_SAFETY_SECONDS = 10.0  # never hand out a token this close to its expiry
_KEY_FIX = ("In the Firebase console open Project settings → Service accounts → Generate new "
            "private key, and upload that JSON as the app's android.service_account")


class TokenError(Exception):
    """No access token: ``kind`` is the outcome of every send of the batch."""

    def __init__(self, kind: OutcomeKind, reason: str, detail: str,
                 retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after


@dataclass(slots=True)
class _Entry:
    credentials: service_account.Credentials
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    token: str | None = None
    refresh_at: float = 0.0
    expires_at: float = 0.0


class _SSLAdapter(requests.adapters.HTTPAdapter):
    """Lets the token request trust what provider connections trust (system CAs plus
    ``CLARION_CA_FILE``): requests alone would use certifi only."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)


class _TimedRequest:
    """google-auth's transport with our timeout (its default is 120 s)."""

    def __init__(self, session: requests.Session, timeout: float) -> None:
        self._request = Request(session)
        self._timeout = timeout

    def __call__(self, url: str, method: str = "GET", body: Any = None,
                 headers: Mapping[str, str] | None = None, timeout: float | None = None,
                 **kwargs: Any) -> Any:
        return self._request(url, method=method, body=body, headers=headers,
                             timeout=self._timeout, **kwargs)


def _refused(exc: google.auth.exceptions.RefreshError, token_uri: str) -> TokenError:
    data = exc.args[1] if len(exc.args) > 1 else None
    code = str(data.get("error") or "") if isinstance(data, Mapping) else ""
    text = str(exc.args[0]) if exc.args else str(exc)
    if exc.retryable:
        return TokenError(OutcomeKind.RETRY_LATER, "TokenEndpointUnavailable",
                          f"the OAuth token endpoint {token_uri} is unavailable ({text}); "
                          "the sends are retried later")
    lowered = text.lower()
    if "signature" in lowered:
        hint = ("the service account key was deleted or disabled in Google Cloud: generate a "
                "new key and update the app")
    elif "not found" in lowered or "disabled" in lowered or code == "unauthorized_client":
        hint = ("the service account was deleted or disabled in Google Cloud: "
                f"{_KEY_FIX[0].lower()}{_KEY_FIX[1:]}")
    elif "short-lived" in lowered or "timeframe" in lowered:
        hint = ("the token request was refused as badly timed: check this server's clock "
                "(NTP); Google allows little skew")
    elif code == "invalid_scope":
        hint = "the FCM scope was refused for this service account: " + _KEY_FIX
    else:
        hint = "the token endpoint refused the service account: " + _KEY_FIX
    return TokenError(OutcomeKind.CREDENTIAL_ERROR, code or "invalid_grant",
                      f"{hint} (Google said: {text})")


class AccessTokens:
    """Cached OAuth2 access tokens for FCM, keyed by service account key."""

    def __init__(self, settings: ProviderSettings, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._now = monotonic
        self._entries: dict[tuple[str, str, str], _Entry] = {}
        self._session: requests.Session | None = None
        self.refreshes = 0  # how many grants were made (observable in tests)

    def _http(self) -> _TimedRequest:
        if self._session is None:
            session = requests.Session()
            session.mount("https://", _SSLAdapter(client_ssl_context(self._settings)))
            self._session = session
        return _TimedRequest(self._session, self._settings.request_timeout_seconds)

    def _entry(self, info: Mapping[str, Any]) -> _Entry:
        key = (str(info.get("client_email", "")), str(info.get("token_uri", "")),
               str(info.get("private_key_id") or hashlib.sha256(
                   str(info.get("private_key", "")).encode("utf-8")).hexdigest()))
        entry = self._entries.get(key)
        if entry is None:
            try:
                make = service_account.Credentials.from_service_account_info
                creds = make(dict(info), scopes=[SCOPE])  # type: ignore[no-untyped-call]
            except (ValueError, KeyError, TypeError) as exc:
                raise TokenError(OutcomeKind.CREDENTIAL_ERROR, "InvalidServiceAccount",
                                 f"the app's service account JSON cannot be used ({exc}): "
                                 + _KEY_FIX) from exc
            entry = self._entries[key] = _Entry(creds)
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

    async def _grant(self, entry: _Entry) -> str:
        creds = entry.credentials
        token_uri = str(getattr(creds, "_token_uri", "") or "the token_uri")
        try:
            await asyncio.to_thread(creds.refresh, self._http())
        except google.auth.exceptions.RefreshError as exc:
            raise _refused(exc, token_uri) from exc
        except google.auth.exceptions.TransportError as exc:
            raise TokenError(OutcomeKind.RETRY_LATER, "ConnectionError",
                             f"could not reach the OAuth token endpoint {token_uri} ({exc}); "
                             "the sends are retried later") from exc
        except (google.auth.exceptions.GoogleAuthError, ValueError) as exc:
            raise TokenError(OutcomeKind.CREDENTIAL_ERROR, "InvalidServiceAccount",
                             f"the service account could not get an access token ({exc}): "
                             + _KEY_FIX) from exc
        token = creds.token
        if not isinstance(token, str) or not token:
            raise TokenError(OutcomeKind.RETRY_LATER, "TokenEndpointUnavailable",
                             f"the OAuth token endpoint {token_uri} answered without a token; "
                             "the sends are retried later")
        self.refreshes += 1
        now = self._now()
        lifetime = 3600.0
        if creds.expiry is not None:
            utcnow = datetime.now(UTC).replace(tzinfo=None)
            lifetime = max(0.0, (creds.expiry - utcnow).total_seconds())
        entry.token = token
        entry.expires_at = now + lifetime
        entry.refresh_at = now + max(lifetime - REFRESH_MARGIN_SECONDS, lifetime / 2)
        return token

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
