"""``ApnsSender``: the APNs adapter of the ``Sender`` port.

One instance serves every app of the installation. Connections are pooled per (credentials,
host): token auth by (Team ID, Key ID, key fingerprint, environment), certificate auth by the
certificate's fingerprint. A batch is sent in rounds: every request is started as soon as a
stream is free (so in-flight requests are bounded by what the connections carry), answers are
classified by ``errors.classify``; a round's retry-safe failures (GOAWAY above the last stream
id, refused streams, requests never written) and one ``ExpiredProviderToken`` per send (after
renewing the JWT once) are sent again in a next round, as long as rounds make progress.
Everything else gets its outcome; a send never raises for a per-device problem.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from clarion.domain.outcomes import DeviceSend, Outcome, OutcomeKind
from clarion.providers.apns.auth import (
    CredentialProblem,
    ProviderTokens,
    certificate_context,
    key_fingerprint,
)
from clarion.providers.apns.errors import classify, local_outcome
from clarion.providers.apns.payload import (
    PayloadProblem,
    RequestParts,
    RequestTemplate,
    check_token,
    request_template,
)
from clarion.providers.apns.pool import ApnsPool
from clarion.providers.apns.transport import Response, TransportError
from clarion.providers.base import ProviderSettings, client_ssl_context

PRODUCTION_URL = "https://api.push.apple.com"
SANDBOX_URL = "https://api.sandbox.push.apple.com"
# Retry-safe failures (GOAWAY, refused or unwritten streams) are sent again while rounds make
# progress; two rounds in a row without any answer end the send with RETRY_LATER outcomes.
_MAX_ROUNDS = 10
_MAX_STALLED_ROUNDS = 2


@dataclass(slots=True)
class _Pending:
    index: int
    item: DeviceSend
    parts: RequestParts
    renewed: bool = False
    auth: bytes = b""


@dataclass(slots=True)
class _App:
    """What one ``send`` call needs about the app's credentials."""

    pool: ApnsPool
    environment: str
    topic: str
    authority: bytes
    token: tuple[str, str, str] | None  # (team_id, key_id, signing_key) for token auth
    outcomes: dict[int, Outcome] = field(default_factory=dict)


def _endpoint(url: str) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise CredentialProblem("BadPath", f"APNs URL {url!r} is not an https URL: set "
                                "CLARION_APNS_URL to e.g. https://127.0.0.1:8443")
    port = parts.port or 443
    authority = parts.hostname if port == 443 else f"{parts.hostname}:{port}"
    return parts.hostname, port, authority.encode("ascii")


class ApnsSender:
    """Send to APNs over HTTP/2 (see the package docstring)."""

    def __init__(self, settings: ProviderSettings, *, clock: Callable[[], float] = time.time,
                 ping_interval: float = 60.0) -> None:
        self._settings = settings
        self._clock = clock
        self._ping_interval = ping_interval
        self.tokens = ProviderTokens(clock=clock)
        self._pools: dict[tuple[Any, ...], ApnsPool] = {}
        self._token_ctx: ssl.SSLContext | None = None
        self._cert_ctx: dict[str, ssl.SSLContext] = {}

    # --- the port ----------------------------------------------------------------------------

    async def send(self, credentials: Mapping[str, Any],
                   batch: Sequence[DeviceSend]) -> list[Outcome]:
        if not batch:
            return []
        try:
            app = self._app(credentials)
        except CredentialProblem as problem:
            return [local_outcome(s.delivery_id, OutcomeKind.CREDENTIAL_ERROR, problem.reason,
                                  problem.detail) for s in batch]
        pending: list[_Pending] = []
        template: RequestTemplate | None = None  # a batch usually carries one notification
        for index, item in enumerate(batch):
            try:
                if template is None or not template.fits(item.notification, item.dry_run):
                    template = None  # a notification that cannot be built is not reused
                    template = request_template(item.notification, dry_run=item.dry_run,
                                                topic=app.topic, authority=app.authority,
                                                now=self._clock)
                parts = template.parts(item.delivery_id, item.device.token)
            except PayloadProblem as problem:
                if problem.reason != "BadDeviceToken":  # a bad token is reported first
                    try:
                        check_token(item.device.token)
                    except PayloadProblem as bad_token:
                        problem = bad_token
                kind = (OutcomeKind.MISMATCH if problem.reason == "BadDeviceToken"
                        else OutcomeKind.REJECTED)
                app.outcomes[index] = local_outcome(item.delivery_id, kind, problem.reason,
                                                    problem.detail)
                continue
            pending.append(_Pending(index, item, parts))
        stalled = 0
        for round_no in range(_MAX_ROUNDS):
            if not pending:
                break
            last = round_no == _MAX_ROUNDS - 1 or stalled == _MAX_STALLED_ROUNDS - 1
            before = len(pending)
            pending = await self._round(app, pending, last=last)
            stalled = stalled + 1 if len(pending) == before else 0
        return [app.outcomes[i] for i in range(len(batch))]

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()

    # --- rounds ------------------------------------------------------------------------------

    async def _round(self, app: _App, pending: list[_Pending], *, last: bool) -> list[_Pending]:
        """Start every pending request as streams free up, then collect the answers."""
        pool = app.pool
        try:
            auth = self._auth(app)
        except CredentialProblem as problem:
            for p in pending:
                app.outcomes[p.index] = local_outcome(
                    p.item.delivery_id, OutcomeKind.CREDENTIAL_ERROR, problem.reason,
                    problem.detail)
            return []
        started: list[tuple[_Pending, asyncio.Future[Response] | TransportError]] = []
        fatal: TransportError | None = None
        round_start = asyncio.get_running_loop().time()
        try:
            for p in pending:
                if fatal is None:
                    conn = pool.try_acquire()
                    if conn is None:
                        try:
                            conn = await pool.acquire()
                        except TransportError as exc:
                            fatal = exc
                    # Credentials refused during this round: the rest would be refused too.
                    refused = pool.rejected(auth, round_start)
                    if refused is not None:
                        app.outcomes[p.index] = classify(
                            p.item.delivery_id, 403, b'{"reason":"%s"}' % refused.encode(),
                            environment=app.environment, topic=app.topic)
                        continue
                if fatal is not None:
                    started.append((p, fatal))
                    continue
                assert conn is not None
                p.auth = auth
                headers = p.parts.headers
                if auth:
                    headers = [*headers, (b"authorization", auth)]
                try:
                    started.append((p, conn.submit(headers, p.parts.body, auth)))
                except TransportError as exc:
                    started.append((p, exc))
            retry: list[_Pending] = []
            for p, outcome in started:
                if isinstance(outcome, TransportError):
                    result: Response | TransportError = outcome
                else:
                    try:
                        result = await outcome
                    except TransportError as exc:
                        result = exc
                if self._settle(app, p, result, last=last):
                    retry.append(p)
            return retry
        finally:
            for _, outcome in started:  # cancelled mid-round: do not leave futures behind
                if isinstance(outcome, asyncio.Future) and not outcome.done():
                    outcome.cancel()

    def _settle(self, app: _App, p: _Pending, result: Response | TransportError, *,
                last: bool) -> bool:
        """Record the outcome of one attempt; True when it should be sent again."""
        delivery_id = p.item.delivery_id
        if isinstance(result, TransportError):
            if result.retry_safe and not last and not result.credential:
                return True
            kind = OutcomeKind.CREDENTIAL_ERROR if result.credential else OutcomeKind.RETRY_LATER
            app.outcomes[p.index] = local_outcome(delivery_id, kind, result.reason,
                                                  result.detail)
            return False
        if result.status == 403 and app.token is not None and not p.renewed and not last \
                and b"ExpiredProviderToken" in result.body:
            team_id, key_id, key = app.token
            self.tokens.renew_after_expired(team_id, key_id, key, p.auth)
            p.renewed = True
            return True
        app.outcomes[p.index] = classify(
            delivery_id, result.status, result.body, environment=app.environment,
            topic=app.topic, apns_id=result.apns_id or p.parts.apns_id,
            retry_after=result.retry_after)
        return False

    # --- credentials → pool ------------------------------------------------------------------

    def _auth(self, app: _App) -> bytes:
        if app.token is None:
            return b""
        team_id, key_id, key = app.token
        return self.tokens.header(team_id, key_id, key)

    def _app(self, credentials: Mapping[str, Any]) -> _App:
        environment = str(credentials.get("environment") or "production")
        topic = str(credentials.get("bundle_id") or "")
        if not topic:
            raise CredentialProblem("MissingTopic", "the app's iOS configuration has no "
                                    "bundle id: set ios.bundle_id")
        url = self._settings.apns_url or (SANDBOX_URL if environment == "sandbox"
                                          else PRODUCTION_URL)
        host, port, authority = _endpoint(url)
        auth = credentials.get("auth") or ("certificate" if credentials.get("certificate_pem")
                                           else "token")
        token: tuple[str, str, str] | None = None
        if auth == "certificate":
            cert = str(credentials.get("certificate_pem") or "")
            key = str(credentials.get("private_key_pem") or "")
            if not cert or not key:
                raise CredentialProblem("BadCertificate", "the app's iOS certificate or its "
                                        "private key is missing: upload the .p12 again")
            fingerprint = hashlib.sha256(cert.encode("utf-8")).hexdigest()[:16]
            pool_key: tuple[Any, ...] = ("cert", fingerprint, host, port)
            ctx = self._cert_ctx.get(fingerprint)
            if ctx is None:
                ctx = certificate_context(self._settings, cert, key)
                self._cert_ctx[fingerprint] = ctx
        else:
            team_id = str(credentials.get("team_id") or "")
            key_id = str(credentials.get("key_id") or "")
            signing_key = str(credentials.get("signing_key") or "")
            if not (team_id and key_id and signing_key):
                raise CredentialProblem("MissingProviderToken", "the app's iOS token auth "
                                        "needs key_id, team_id and signing_key: save the .p8 "
                                        "key, Key ID and Team ID again")
            token = (team_id, key_id, signing_key)
            pool_key = ("token", team_id, key_id, key_fingerprint(signing_key), host, port)
            if self._token_ctx is None:
                self._token_ctx = client_ssl_context(self._settings, alpn=["h2"])
            ctx = self._token_ctx
        pool = self._pools.get(pool_key)
        if pool is None:
            pool = ApnsPool(host=host, port=port, ssl_context=ctx, server_hostname=host,
                            size=self._settings.apns_connections, token_auth=token is not None,
                            timeout=self._settings.request_timeout_seconds,
                            ping_interval=self._ping_interval)
            self._pools[pool_key] = pool
        return _App(pool=pool, environment=environment, topic=topic, authority=authority,
                    token=token)

    def pool_for(self, credentials: Mapping[str, Any]) -> ApnsPool:
        """The connection pool these credentials use (tests, metrics)."""
        return self._app(credentials).pool

