"""``FcmEmulator``: a local FCM HTTP v1 service and its OAuth token endpoint (aiohttp).

It serves, on one port (HTTP/1.1, optional TLS):

- ``POST /token``: the JWT-bearer grant (``oauth.TokenAuthority``), for service accounts
  registered with ``register_service_account`` (or ``new_service_account``, which makes a key
  whose ``token_uri`` points here);
- ``POST /v1/projects/{project}/messages:send``: the bearer token must be one this emulator
  issued, unexpired, for a service account of that project (else 401 UNAUTHENTICATED / 403
  PERMISSION_DENIED, as Google answers); the body is checked as FCM checks it
  (``messages.check_body``); ``validate_only`` answers without delivering;
- ``GET /_emulator/received`` (the request log) and ``POST /_emulator/dead``
  (``{"tokens": [...]}``), a small admin surface for demos.

Faults: dead tokens (prefix ``dead`` or ``mark_dead``) → 404 UNREGISTERED; prefix
``other-project`` → 403 SENDER_ID_MISMATCH; prefix ``third-party-auth`` → 401
THIRD_PARTY_AUTH_ERROR; malformed tokens (whitespace, prefix ``bad``) → 400 INVALID_ARGUMENT;
seeded random 429 QUOTA_EXCEEDED / 503 UNAVAILABLE / 500 INTERNAL with ``Retry-After``;
``latency_ms``; ``drop_every`` N sends (the connection is aborted without an answer).
Every request is recorded (decoded) in ``received`` and, with ``log_path``, as a JSON line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import ssl
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from clarion.emulators.devices import SimulatedDevices, notification_from
from clarion.emulators.fcm.messages import (
    BAD_TOKEN_MESSAGE,
    ERROR_INFO,
    Refusal,
    check_body,
    google_error,
    invalid,
    malformed_token,
)
from clarion.emulators.fcm.oauth import Issued, TokenAuthority
from clarion.emulators.serving import HttpEmulator, drop_connection

_SEND_PATH = "/v1/projects/{project}/messages:send"


def new_service_account_info(project_id: str, token_uri: str, *,
                             client_email: str | None = None) -> dict[str, Any]:
    """A service account key JSON shaped like the one Google hands out (fresh RSA key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode("ascii")
    email = client_email or f"firebase-adminsdk-emu@{project_id}.iam.gserviceaccount.com"
    return {
        "type": "service_account", "project_id": project_id,
        "private_key_id": secrets.token_hex(20), "private_key": pem,
        "client_email": email, "client_id": str(secrets.randbelow(10**20)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/" + email,
        "universe_domain": "googleapis.com",
    }


def _unauthenticated(reason: str) -> Refusal:
    text = ("Request is missing required authentication credential. Expected OAuth 2 access "
            "token, login cookie or other valid authentication credential."
            if reason == "CREDENTIALS_MISSING" else
            "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential.")
    return google_error(401, "UNAUTHENTICATED", text, details=[
        {"@type": ERROR_INFO, "reason": reason, "domain": "googleapis.com",
         "metadata": {"service": "fcm.googleapis.com", "method":
                      "google.firebase.fcm.v1.FcmService.SendMessage"}}])


class FcmEmulator(HttpEmulator):
    """A local FCM v1 endpoint plus token endpoint. ``await start()`` returns the port."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0,
                 ssl_context: ssl.SSLContext | None = None, log_path: Path | None = None,
                 seed: int = 0, rate_429: float = 0.0, rate_503: float = 0.0,
                 rate_500: float = 0.0, retry_after: str = "1", latency_ms: float = 0.0,
                 drop_every: int = 0, token_lifetime_seconds: float = 3600.0,
                 dead_tokens: Iterable[str] = (),
                 devices: SimulatedDevices | None = None) -> None:
        super().__init__(host=host, port=port, ssl_context=ssl_context, log_path=log_path)
        self.rate_429, self.rate_503, self.rate_500 = rate_429, rate_503, rate_500
        self.retry_after = retry_after
        self.latency_ms = latency_ms
        self.drop_every = drop_every
        self.authority = TokenAuthority(lifetime_seconds=token_lifetime_seconds)
        self.dead: set[str] = set(dead_tokens)
        self.received: list[dict[str, Any]] = []
        self.delivered: list[dict[str, Any]] = []  # messages accepted (not validate_only)
        self.sends = 0  # messages:send requests seen (drop_every counts these)
        self._random = random.Random(seed)
        self.devices = devices  # the apps on the devices, told of each message delivered

    # --- knobs -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """What to give Clarion as ``CLARION_FCM_URL``."""
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def register_service_account(self, info: Mapping[str, Any]) -> None:
        self.authority.register(info)

    def new_service_account(self, project_id: str, *, client_email: str | None = None
                            ) -> dict[str, Any]:
        """A fresh service account of ``project_id`` whose token_uri is this emulator."""
        info = new_service_account_info(project_id, self.token_uri, client_email=client_email)
        self.register_service_account(info)
        return info

    def mark_dead(self, *tokens: str) -> None:
        self.dead.update(tokens)

    def revoke_tokens(self) -> None:
        self.authority.revoke_tokens()

    def delete_key(self, client_email: str) -> None:
        self.authority.delete_key(client_email)

    # --- lifecycle ---------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_post(_SEND_PATH, self._send)
        app.router.add_get("/_emulator/received", self._admin_received)
        app.router.add_post("/_emulator/dead", self._admin_dead)
        return app

    # --- recording ---------------------------------------------------------------------------
    def _record(self, request: web.Request, decoded: Any, status: int, answer: Any) -> None:
        entry = {"at": datetime.now(UTC).isoformat(), "method": request.method,
                 "path": request.path, "request": decoded, "status": status, "answer": answer}
        self.received.append(entry)
        self._write_log(entry)

    def _answer(self, request: web.Request, decoded: Any, status: int, body: Any,
                headers: Mapping[str, str] | None = None) -> web.Response:
        self._record(request, decoded, status, body)
        return web.json_response(body, status=status, headers=headers)

    # --- token endpoint ----------------------------------------------------------------------
    def _audiences(self, request: web.Request) -> set[str]:
        own = {f"{self.scheme}://{h}:{self.port}/token" for h in (self.host, "127.0.0.1",
                                                               "localhost")}
        own.add(str(request.url.with_query(None)))
        return own

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        answer = self.authority.grant(form, self._audiences(request))
        decoded = {"grant_type": form.get("grant_type"), "assertion_claims": answer.claims}
        body = dict(answer.body)
        if "access_token" in body:  # keep the log useful without leaking whole tokens
            self._record(request, decoded, answer.status,
                         {**body, "access_token": str(body["access_token"])[:16] + "…"})
            return web.json_response(body, status=answer.status)
        return self._answer(request, decoded, answer.status, body)

    # --- messages:send -----------------------------------------------------------------------
    def _authorise(self, request: web.Request, project: str) -> Refusal | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return _unauthenticated("CREDENTIALS_MISSING")
        grant = self.authority.check(header[7:].strip())
        if not isinstance(grant, Issued):
            return _unauthenticated(grant)
        if grant.project_id != project:
            return google_error(403, "PERMISSION_DENIED", (
                "Permission 'cloudmessaging.messages.create' denied on resource "
                f"'//cloudresourcemanager.googleapis.com/projects/{project}' (or it may not "
                "exist)."), details=[{"@type": ERROR_INFO, "reason": "IAM_PERMISSION_DENIED",
                                      "domain": "cloudresourcemanager.googleapis.com"}])
        return None

    def _random_fault(self) -> Refusal | None:
        draw = self._random.random()
        if draw < self.rate_429:
            return google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric "
                                "'Send requests' and limit 'Send requests per minute'.",
                                fcm_code="QUOTA_EXCEEDED")
        draw -= self.rate_429
        if draw < self.rate_503:
            return google_error(503, "UNAVAILABLE", "The service is currently unavailable.",
                                fcm_code="UNAVAILABLE")
        draw -= self.rate_503
        if draw < self.rate_500:
            return google_error(500, "INTERNAL", "Internal error encountered.",
                                fcm_code="INTERNAL")
        return None

    def _token_fault(self, token: str) -> Refusal | None:
        if malformed_token(token):
            return invalid(BAD_TOKEN_MESSAGE, fcm=True)
        if token.startswith("dead") or token in self.dead:
            return google_error(404, "NOT_FOUND", "Requested entity was not found.",
                                fcm_code="UNREGISTERED")
        if token.startswith("other-project"):
            return google_error(403, "PERMISSION_DENIED", "SenderId mismatch",
                                fcm_code="SENDER_ID_MISMATCH")
        if token.startswith("third-party-auth"):
            return google_error(401, "UNAUTHENTICATED", "Auth error from APNS or Web Push "
                                "Service", fcm_code="THIRD_PARTY_AUTH_ERROR")
        return None

    async def _send(self, request: web.Request) -> web.StreamResponse:
        project = request.match_info["project"]
        raw = await request.read()
        self.sends += 1
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        decoded = {"project": project,
                   "authorization": request.headers.get("Authorization", "")[:20] + "…",
                   "body": body if body is not None else raw.decode("utf-8", "replace")}
        if self.drop_every and self.sends % self.drop_every == 0:
            self._record(request, decoded, 0, "connection dropped")
            drop_connection(request)
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        refusal = self._authorise(request, project)
        if refusal is None and (fault := self._random_fault()) is not None:
            return self._answer(request, decoded, fault.status, fault.body,
                                {"Retry-After": self.retry_after})
        if refusal is None and body is None:
            refusal = invalid("Invalid JSON payload received. Unexpected token.")
        message: dict[str, Any] = {}
        validate_only = False
        if refusal is None:
            checked = check_body(body)
            if isinstance(checked, Refusal):
                refusal = checked
            else:
                message, validate_only = checked
                device = message.get("token", message.get("fid"))
                refusal = self._token_fault(device) if isinstance(device, str) else None
        if refusal is not None:
            return self._answer(request, decoded, refusal.status, refusal.body)
        if validate_only:
            # FCM answers a dry run with this fixed id (firebase.google.com/docs/reference/
            # fcm/rest/v1/projects.messages/send: "validate_only ... without delivering").
            name = f"projects/{project}/messages/fake_message_id"
        else:
            name = f"projects/{project}/messages/0:{int(time.time() * 1000)}%{secrets.token_hex(8)}"
            self.delivered.append({"project": project, "name": name, "message": message})
            token = message.get("token")
            if self.devices is not None and isinstance(token, str):
                notification = notification_from("android", token, message)
                if notification is not None:
                    self.devices.notify(notification)
        return self._answer(request, decoded, 200, {"name": name})

    # --- admin ---------------------------------------------------------------------------------
    async def _admin_received(self, request: web.Request) -> web.Response:
        return web.json_response({"received": self.received[-1000:],
                                  "delivered": len(self.delivered)}, dumps=_dumps)

    async def _admin_dead(self, request: web.Request) -> web.Response:
        with contextlib.suppress(ValueError):
            payload = await request.json()
            tokens = payload.get("tokens") if isinstance(payload, dict) else None
            if isinstance(tokens, list) and all(isinstance(t, str) for t in tokens):
                self.mark_dead(*tokens)
                return web.json_response({"dead": sorted(self.dead)})
        return web.json_response({"error": 'send {"tokens": ["…"]}'}, status=400)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)
