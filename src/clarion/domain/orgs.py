"""Organizations and their admin tokens: the read models and the naming rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from clarion.errors import InvalidInput

ADMIN_TOKEN_PREFIX = "clr_adm"
MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class Org:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class OrgCreated:
    id: str
    name: str
    admin_token: str  # shown once: only its hash is stored


@dataclass(frozen=True, slots=True)
class AdminToken:
    """An admin token as listed: never its value (only its hash is stored)."""

    id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class AdminTokenCreated:
    id: str
    name: str
    token: str


def org_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidInput(f"an organization needs a name of 1 to {MAX_NAME} characters",
                           fix="Pass --name with a non-empty name.", field="name")
    return name


def token_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidInput(f"an admin token needs a name of 1 to {MAX_NAME} characters",
                           fix="Name it after who or what uses it, e.g. --name ci-deploy.",
                           field="name")
    return name
