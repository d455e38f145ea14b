"""The emulator's OAuth 2.0 token endpoint: the JWT-bearer grant Google's endpoint implements.

RFC 7523 §2.1 / developers.google.com/identity/protocols/oauth2/service-account ("Preparing to
make an authorized API call"): ``POST token_uri`` with the form
``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>``; the JWT is signed
RS256 with the service account's key and claims ``iss`` (the account's email), ``scope``,
``aud``, ``iat`` and ``exp`` (at most one hour after ``iat``). Checked here as Google checks it,
with Google's error bodies (``{"error": "invalid_grant", "error_description": ...}``, HTTP 400).

The audience: Google's libraries put Google's own endpoint in ``aud``
(``https://oauth2.googleapis.com/token``) whatever the key's ``token_uri`` says — google-auth
does — so both that and this emulator's own token URL are accepted.

Access tokens are opaque random strings remembered with their account, project and expiry.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
CLOUD_SCOPE = "https://www.googleapis.com/auth/cloud-platform"  # also allows FCM sends
GOOGLE_AUDIENCES = frozenset({
    "https://oauth2.googleapis.com/token",
    "https://accounts.google.com/o/oauth2/token",
    "https://www.googleapis.com/oauth2/v4/token",
})
MAX_ASSERTION_LIFETIME = 3600  # "Token must be a short-lived token (60 minutes)"
CLOCK_SKEW = 300
_BAD_TIME = ("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
             "timeframe. Check your iat and exp values in the JWT claim.")


@dataclass(frozen=True, slots=True)
class Account:
    client_email: str
    project_id: str
    keys: Mapping[str, rsa.RSAPublicKey]  # private_key_id -> public key


@dataclass(frozen=True, slots=True)
class Issued:
    client_email: str
    project_id: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class GrantAnswer:
    status: int
    body: dict[str, Any]
    claims: dict[str, Any] | None  # the decoded assertion, for the request log


def _oauth_error(error: str, description: str, claims: dict[str, Any] | None = None
                 ) -> GrantAnswer:
    return GrantAnswer(400, {"error": error, "error_description": description}, claims)


def public_key_of(info: Mapping[str, Any]) -> rsa.RSAPublicKey:
    """The public half of a service account JSON's ``private_key`` (PEM, RSA)."""
    text = str(info["private_key"]).replace("\\n", "\n")
    key = serialization.load_pem_private_key(text.encode("utf-8"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("a service account key must be RSA")
    return key.public_key()


class TokenAuthority:
    """Registered service accounts, the grant, and the access tokens it issued."""

    def __init__(self, *, lifetime_seconds: float = 3600.0,
                 now: Callable[[], float] = time.time) -> None:
        self.lifetime_seconds = lifetime_seconds
        self._now = now
        self._accounts: dict[str, Account] = {}
        self._issued: dict[str, Issued] = {}

    def register(self, info: Mapping[str, Any]) -> Account:
        """Trust a service account key (the JSON Google hands out, private key included)."""
        email = str(info["client_email"])
        kid = str(info.get("private_key_id") or "")
        old = self._accounts.get(email)
        keys = dict(old.keys) if old is not None else {}
        keys[kid] = public_key_of(info)
        account = Account(email, str(info["project_id"]), keys)
        self._accounts[email] = account
        return account

    def delete_key(self, client_email: str, private_key_id: str | None = None) -> None:
        """Simulate a key deleted in Google Cloud (all keys of the account by default)."""
        account = self._accounts.get(client_email)
        if account is None:
            return
        keys = {} if private_key_id is None else {
            k: v for k, v in account.keys.items() if k != private_key_id}
        self._accounts[client_email] = Account(account.client_email, account.project_id, keys)

    def revoke_tokens(self) -> None:
        """Forget every access token issued (the next send answers 401)."""
        self._issued.clear()

    def grant(self, form: Mapping[str, str], audiences: Iterable[str]) -> GrantAnswer:
        grant_type = form.get("grant_type", "")
        if grant_type != GRANT_TYPE:
            return _oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        assertion = form.get("assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
            claims: dict[str, Any] = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return _oauth_error("invalid_grant", "Invalid JWT: the assertion is not a JWT.")
        if header.get("alg") != "RS256":
            return _oauth_error("invalid_grant", "Invalid JWT: the assertion must be signed "
                                "with RS256.", claims)
        account = self._accounts.get(str(claims.get("iss", "")))
        if account is None:
            return _oauth_error("invalid_grant", "Invalid grant: account not found", claims)
        kid = header.get("kid")
        keys = ([account.keys[kid]] if isinstance(kid, str) and kid in account.keys
                else list(account.keys.values()))
        if not any(_signed_by(assertion, key) for key in keys):
            return _oauth_error("invalid_grant", "Invalid JWT Signature.", claims)
        accepted = GOOGLE_AUDIENCES | set(audiences)
        if claims.get("aud") not in accepted:
            return _oauth_error("invalid_grant", "Invalid JWT: Failed audience check. The right "
                                "audience is https://oauth2.googleapis.com/token", claims)
        iat, exp = claims.get("iat"), claims.get("exp")
        now = self._now()
        if (not isinstance(iat, int | float) or not isinstance(exp, int | float)
                or exp <= iat or exp - iat > MAX_ASSERTION_LIFETIME
                or iat > now + CLOCK_SKEW or exp < now - CLOCK_SKEW):
            return _oauth_error("invalid_grant", _BAD_TIME, claims)
        scopes = str(claims.get("scope", "")).split()
        if FCM_SCOPE not in scopes and CLOUD_SCOPE not in scopes:
            return _oauth_error("invalid_scope", "Invalid OAuth scope or ID token audience "
                                "provided.", claims)
        token = "ya29.emu-" + secrets.token_urlsafe(32)
        self._issued[token] = Issued(account.client_email, account.project_id,
                                     now + self.lifetime_seconds)
        return GrantAnswer(200, {"access_token": token, "expires_in": int(self.lifetime_seconds),
                                 "token_type": "Bearer"}, claims)

    def check(self, token: str) -> Issued | str:
        """The grant behind a bearer token, or why it is refused (an ErrorInfo reason)."""
        issued = self._issued.get(token)
        if issued is None:
            return "ACCESS_TOKEN_TYPE_UNSUPPORTED"
        if issued.expires_at <= self._now():
            return "ACCESS_TOKEN_EXPIRED"
        return issued


def _signed_by(assertion: str, key: rsa.RSAPublicKey) -> bool:
    try:
        jwt.decode(assertion, key, algorithms=["RS256"],
                   options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                            "verify_aud": False})
    except jwt.InvalidSignatureError:
        return False
    except jwt.PyJWTError:
        return False
    return True
