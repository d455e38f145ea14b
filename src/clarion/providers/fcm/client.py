"""``FcmSender``: FCM HTTP v1 ``messages:send``, one request per device, over a pooled
keep-alive HTTP/1.1 connection pool (aiohttp).

Why aiohttp and not firebase-admin: firebase-admin hard-codes the FCM URL and reaches ~440-585
sends/s on its async path; aiohttp with a pooled connector reached ~5.1k/s per core here
(performance-notes). FCM has no batch endpoint any more (gone since 2024), so throughput is
concurrency: up to ``fcm_connections`` requests are in flight, one per pooled connection. The
in-flight bound is a semaphore of the same size, so a request never waits for a connection
inside its own timeout (a client-side timeout must never decide an outcome silently).

The pooled session comes from ``providers.outbound`` (the one client stack): the FCM origin is
the operator's (``CLARION_FCM_URL``, trusted) or Google's (resolved once, public addresses
only). The OAuth grant (``auth``) uses the same stack with the same policy.

Per send: the body is built and size-checked before anything goes out (``payload``); the answer
is classified by ``errors.classify``. A 401 about the access token refreshes it once and resends
that one message; a second 401 is a credential error. A refused service account (at the token
endpoint) decides the whole batch at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from clarion.domain.outcomes import DeviceSend, Outcome, OutcomeKind
from clarion.providers.base import ProviderSettings
from clarion.providers.fcm.auth import AccessTokens, TokenError, fcm_policy
from clarion.providers.fcm.errors import classify, connection_outcome, needs_token_refresh
from clarion.providers.fcm.payload import BuiltMessage, PayloadError, build_message
from clarion.providers.outbound import AddressRefused, OutboundClient, Unreachable, describe

DEFAULT_FCM_URL = "https://fcm.googleapis.com"
_CONTENT_TYPE = "application/json; charset=UTF-8"
_SA_FIX = ("upload the service account JSON of the app's Firebase project (Project settings → "
           "Service accounts → Generate new private key)")


def _android_credentials(credentials: Mapping[str, Any]) -> tuple[str, Mapping[str, Any], bool]:
    """(project_id, service account info, notification_block) or a batch-wide TokenError."""
    sa = credentials.get("service_account")
    if not isinstance(sa, Mapping) or not sa.get("private_key") or not sa.get("client_email"):
        raise TokenError(OutcomeKind.CREDENTIAL_ERROR, "InvalidServiceAccount",
                         "the app has no usable FCM service account: " + _SA_FIX)
    project_id = credentials.get("project_id") or sa.get("project_id")
    if not isinstance(project_id, str) or not project_id:
        raise TokenError(OutcomeKind.CREDENTIAL_ERROR, "InvalidServiceAccount",
                         "the service account names no project_id: " + _SA_FIX)
    if not sa.get("token_uri") and credentials.get("token_uri"):
        sa = {**sa, "token_uri": credentials["token_uri"]}
    return project_id, sa, bool(credentials.get("notification_block", False))


class FcmSender:
    """The FCM adapter for every Android app of the installation (``ClosableSender``)."""

    def __init__(self, settings: ProviderSettings, *, tokens: AccessTokens | None = None
                 ) -> None:
        self._settings = settings
        self._base = (settings.fcm_url or DEFAULT_FCM_URL).rstrip("/")
        self._limit = max(1, settings.fcm_connections)
        self._slots = asyncio.Semaphore(self._limit)
        self._tokens = tokens or AccessTokens(settings)
        # Created on first use: aiohttp sessions belong to the running event loop.
        self._http = OutboundClient(fcm_policy(settings), settings, limit=self._limit,
                                    limit_per_host=self._limit)
        self._urls: dict[str, URL] = {}  # parsed once per project, not per send

    def _url(self, project_id: str) -> URL:
        url = self._urls.get(project_id)
        if url is None:
            url = self._urls[project_id] = URL(
                f"{self._base}/v1/projects/{quote(project_id, safe='')}/messages:send")
        return url

    async def send(self, credentials: Mapping[str, Any], batch: Sequence[DeviceSend]
                   ) -> list[Outcome]:
        """One outcome per send, never raising for a per-device or provider problem."""
        if not batch:
            return []
        try:
            project_id, info, notification_block = _android_credentials(credentials)
        except TokenError as exc:
            return [_from_token_error(s.delivery_id, exc) for s in batch]
        decided: list[Outcome] = []
        ready: list[tuple[DeviceSend, BuiltMessage]] = []
        for item in batch:
            try:
                ready.append((item, build_message(item.device.token, item.notification,
                                                  notification_block=notification_block,
                                                  dry_run=item.dry_run)))
            except PayloadError as exc:
                decided.append(Outcome(item.delivery_id, OutcomeKind.REJECTED,
                                       reason=exc.reason, detail=exc.detail))
        if not ready:
            return decided
        try:
            token = await self._tokens.get(info)
        except TokenError as exc:
            return decided + [_from_token_error(s.delivery_id, exc) for s, _ in ready]
        url = self._url(project_id)
        sent = await asyncio.gather(*(self._send_one(url, info, token, item, built)
                                      for item, built in ready))
        return decided + sent

    async def _post(self, url: URL, token: str, body: bytes) -> tuple[int, bytes, str | None]:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": _CONTENT_TYPE}
        async with self._http.session().post(url, data=body, headers=headers,
                                             allow_redirects=False) as resp:
            return resp.status, await resp.read(), resp.headers.get("Retry-After")

    async def _send_one(self, url: URL, info: Mapping[str, Any], token: str, item: DeviceSend,
                        built: BuiltMessage) -> Outcome:
        try:
            async with self._slots:
                status, body, retry_after = await self._post(url, token, built.body)
                if needs_token_refresh(status, body):
                    # Google says an expired or revoked token answers 401: fetch a new one once.
                    try:
                        token = await self._tokens.refresh(info, stale=token)
                    except TokenError as exc:
                        return _from_token_error(item.delivery_id, exc)
                    status, body, retry_after = await self._post(url, token, built.body)
        except TimeoutError:
            return connection_outcome(item.delivery_id, timeout=True, error="timeout")
        except AddressRefused as exc:
            return connection_outcome(item.delivery_id, timeout=False, error=exc.message,
                                      host=self._base)
        except (aiohttp.ClientError, Unreachable) as exc:
            failure = describe(exc, timeout=self._http.timeout)
            return connection_outcome(item.delivery_id, timeout=failure.reason == "Timeout",
                                      error=failure.message, host=self._base)
        outcome = classify(item.delivery_id, status, body, retry_after=retry_after,
                           now=datetime.now(UTC))
        if built.note is not None and outcome.kind is OutcomeKind.ACCEPTED:
            outcome = replace(outcome, detail=built.note)
        return outcome

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._tokens.aclose()


def _from_token_error(delivery_id: str, exc: TokenError) -> Outcome:
    return Outcome(delivery_id, exc.kind, reason=exc.reason, detail=exc.detail,
                   retry_after_seconds=exc.retry_after)
