"""Secrets at rest and bearer tokens.

* ``SecretBox`` encrypts JSON documents with Fernet (AES-128-CBC + HMAC-SHA256, from
  ``cryptography``). Each configured secret key is stretched with HKDF into a Fernet key; the
  first key encrypts and every key decrypts (``MultiFernet``), so keys rotate by prepending.
* Bearer tokens (admin and API tokens) are 256-bit random strings, stored only as SHA-256
  hashes: they are high-entropy, so a fast hash is enough and lookups stay one index probe.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from clarion.errors import ConfigurationError


def _fernet_key(secret: str) -> bytes:
    raw = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"clarion-secret-box-v1", info=b"fernet"
    ).derive(secret.encode("utf-8"))
    return base64.urlsafe_b64encode(raw)


class SecretBox:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ConfigurationError(
                "no secret key configured",
                fix="Set CLARION_SECRET_KEY (see docs/configuration.md).",
            )
        self._fernet = MultiFernet([Fernet(_fernet_key(k)) for k in keys])

    def encrypt(self, document: dict[str, Any]) -> bytes:
        return self._fernet.encrypt(json.dumps(document, separators=(",", ":")).encode("utf-8"))

    def decrypt(self, blob: bytes) -> dict[str, Any]:
        try:
            data = self._fernet.decrypt(blob)
        except InvalidToken as exc:
            raise ConfigurationError(
                "stored secrets cannot be decrypted with the configured secret key",
                fix="Set CLARION_SECRET_KEY to the key these secrets were saved with (add the "
                "old key after a comma to rotate).",
            ) from exc
        value = json.loads(data)
        assert isinstance(value, dict)
        return value


def derived_key(secret: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose (e.g. signing tracked links), derived with HKDF."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"clarion-derived-key-v1",
                info=purpose.encode("utf-8")).derive(secret.encode("utf-8"))


def new_token(prefix: str) -> str:
    """A new bearer token such as ``clr_adm_…`` (the prefix tells a person what it is)."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hmac_sha256_b64(key: str, message: str) -> str:
    """The CIJ callback signature: base64(HMAC-SHA256(key=api token, msg=callback url))."""
    digest = hmac.new(key.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")
