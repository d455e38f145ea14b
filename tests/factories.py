"""Test data built through the services, as a user would build it."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from clarion.bootstrap import Container
from clarion.services.interactions import RECORD
from clarion.worker.loop import Worker
from clarion.worker.tasks import build_handlers


def p8_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def service_account(project_id: str = "contoso-push") -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return {
        "type": "service_account", "project_id": project_id, "private_key_id": "abc123",
        "private_key": pem, "client_email": f"push@{project_id}.iam.gserviceaccount.com",
        # Never Google: a test must not reach outside 127.0.0.0/8 (port 9 is discard/closed);
        # tests/conftest.py's settings name its origin as CLARION_FCM_URL, so it is allowed.
        "client_id": "1234567890", "token_uri": "http://127.0.0.1:9/token",
    }


def app_document(name: str = "Contoso", **settings: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": name,
        "ios": {"auth": "token", "signing_key": p8_key(), "key_id": "ABC123DEFG",
                "team_id": "DEF123GHIJ", "bundle_id": "com.contoso.app",
                "environment": "sandbox"},
        "android": {"service_account": service_account()},
        "web": {"vapid_subject": "mailto:ops@contoso.com"},
    }
    if settings:
        doc["settings"] = settings
    return doc


def b64u(n: int) -> str:
    return base64.urlsafe_b64encode(os.urandom(n)).rstrip(b"=").decode()


def apns_token() -> str:
    """A random APNs token every test peer accepts: random hex can spell "dead" (about one
    token in a thousand: the fake sender's dead-token marker) or start with "badd" (the APNs
    emulator's other-environment marker)."""
    while "dead" in (token := os.urandom(32).hex()) or token.startswith("badd"):
        pass
    return token


@dataclass
class World:
    org_id: str
    admin_token: str
    app_id: str
    api_token: str
    person_ids: list[str]


async def world(c: Container, *, people_count: int = 2, **settings: Any) -> World:
    org = await c.orgs.create("Contoso")
    created = await c.apps.create(org.id, app_document(**settings))
    ids = []
    for i in range(people_count):
        p = await c.people.create(org.id, {"email": f"user{i}@contoso.com", "kind": "contact"})
        ids.append(p.id)
    return World(org.id, org.admin_token, created.app.id, created.api_token, ids)


async def drain(c: Container, *, kinds: Sequence[str] | None = None,
                rounds: int = 10_000) -> int:
    """Run every due job with the worker's own loop (``Worker.run_until_idle``) until nothing
    of ``kinds`` (default: every kind) is due, or for ``rounds`` claims; returns how many jobs
    ran."""
    handlers = build_handlers(c)
    if kinds is not None:
        handlers = {k: h for k, h in handlers.items() if k in kinds}
    worker = Worker(c.queue, handlers, concurrency=c.settings.worker_concurrency,
                    batch_size=100, poll_seconds=0.1, worker_id="test")
    return await worker.run_until_idle(max_rounds=rounds)


async def recorded(c: Container) -> int:
    """Record the accepted interaction reports now (the worker's ``interactions.record``)."""
    return await drain(c, kinds=[RECORD.name])


def dumps(value: Any) -> str:
    return json.dumps(value)
