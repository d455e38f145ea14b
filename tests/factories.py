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
from clarion.services import apps, orgs, people
from clarion.services.interactions import RECORD_JOB
from clarion.store.jobs import JobQueue
from clarion.worker.handlers import build_handlers


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
    org = await orgs.create_org(db=c.db, clock=c.clock, name="Contoso")
    created = await apps.create_app(db=c.db, box=c.box, clock=c.clock, org_id=org.id,
                                    document=app_document(**settings),
                                    fcm_url=c.settings.fcm_url)
    ids = []
    for i in range(people_count):
        p = await people.create_person(db=c.db, clock=c.clock, settings=c.settings,
                                       org_id=org.id,
                                       data={"email": f"user{i}@contoso.com", "kind": "contact"})
        ids.append(p.id)
    return World(org.id, org.admin_token, created.app.id, created.api_token, ids)


async def drain(c: Container, *, kinds: Sequence[str] | None = None, rounds: int = 50) -> int:
    """Run every due job (as the worker would) until the queue has nothing due; returns jobs run."""
    handlers = build_handlers(c)
    queue: JobQueue = c.queue
    done = 0
    for _ in range(rounds):
        jobs = await queue.claim(worker_id="test", limit=100,
                                 kinds=list(kinds) if kinds else list(handlers))
        if not jobs:
            return done
        by_kind: dict[str, list[Any]] = {}
        for job in jobs:
            by_kind.setdefault(job.kind, []).append(job)
        for kind, batch in by_kind.items():
            await handlers[kind](batch)
            await queue.complete([j.id for j in batch])
            done += len(batch)
    return done


async def recorded(c: Container) -> int:
    """Record the accepted interaction reports now (the worker's ``interactions.record``)."""
    return await drain(c, kinds=[RECORD_JOB])


def dumps(value: Any) -> str:
    return json.dumps(value)
