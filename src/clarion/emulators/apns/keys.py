"""How the APNs emulator checks who is sending: provider tokens (ES256 JWT) and client
certificates, with the rules Apple documents.

Token auth (Apple, "Establishing a token-based connection to APNs"):
- the JWT header names ``alg: ES256`` and a ``kid`` registered with ``register_key``; the
  signature must verify with that key's public key and ``iss`` must be its Team ID, else
  403 ``InvalidProviderToken``; no ``authorization`` header (and no client certificate) is
  403 ``MissingProviderToken``;
- a token whose ``iat`` is more than ``max_age`` (3600 s) old is 403 ``ExpiredProviderToken``;
- a NEW token for a key less than ``update_window`` seconds (1200) after the previous new
  token of that key is 429 ``TooManyProviderTokenUpdates``; tokens already accepted stay valid
  until they expire. Set ``update_window`` to 0 to allow any number of processes each with its
  own token (Apple counts per key, so several senders of one key must share a token).

Certificate auth (Apple, "Establishing a certificate-based connection to APNs"): the TLS layer
accepts client certificates signed by the emulator's client CA (``issue``) or listed with
``trust``; an untrusted certificate fails the TLS handshake, as Apple's does. The topic is the
certificate subject's UID (bundle id); the environment comes from the common name like Apple's
("Apple Development IOS Push Services: …" = sandbox, "Apple Production IOS Push Services: …" =
production, "Apple Push Services: …" = both); a mismatch is 403 ``BadCertificateEnvironment``.

Signature checks are cached per token string, so a token costs one ECDSA verification.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

_CN_ENV = (
    ("Apple Development IOS Push Services", "sandbox"),
    ("Apple Production IOS Push Services", "production"),
    ("Apple Push Services", "both"),
)


class AuthRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class _Key:
    key_id: str
    team_id: str
    public_key: ec.EllipticCurvePublicKey
    topics: set[str]


@dataclass(frozen=True)
class TokenIdentity:
    key_id: str
    team_id: str
    iat: int
    fingerprint: str  # sha256 of the JWT, to tell tokens apart in records

    def as_dict(self) -> dict[str, Any]:
        return {"kid": self.key_id, "iss": self.team_id, "iat": self.iat,
                "sha256": self.fingerprint}


@dataclass(frozen=True)
class CertIdentity:
    topic: str
    environment: str  # sandbox | production | both
    subject: str


@dataclass(frozen=True)
class IssuedCertificate:
    certificate_pem: str
    private_key_pem: str
    p12: bytes  # PKCS#12 without password, as Keychain Access would export it


def new_signing_key() -> str:
    """A new APNs signing key as Apple hands it out: an unencrypted EC P-256 private key in
    PKCS#8 PEM (the content of ``AuthKey_<KEY_ID>.p8``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def load_public_key(pem: str | bytes) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from a public key PEM or from the ``.p8`` private key itself."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    key: Any
    if b"PRIVATE KEY" in data:
        key = serialization.load_pem_private_key(data, password=None).public_key()
    else:
        key = serialization.load_pem_public_key(data)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("APNs keys are EC P-256 keys")
    return key


@dataclass
class KeyRegistry:
    max_age: float = 3600.0
    update_window: float = 1200.0
    _keys: dict[str, _Key] = field(default_factory=dict)
    _accepted: dict[str, TokenIdentity] = field(default_factory=dict)
    _latest: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)

    def register(self, key_id: str, team_id: str, public_key: str | bytes |
                 ec.EllipticCurvePublicKey, topics: tuple[str, ...] | list[str] = ()) -> None:
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key = load_public_key(public_key)
        self._keys[key_id] = _Key(key_id, team_id, public_key, set(topics))

    def topics_of(self, key_id: str) -> set[str]:
        key = self._keys.get(key_id)
        return set() if key is None else key.topics

    def verify(self, authorization: str, now: float) -> TokenIdentity:
        """The identity behind an ``authorization: bearer <jwt>`` value, or AuthRefused."""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthRefused(403, "InvalidProviderToken")
        identity = self._accepted.get(token)
        if identity is None:
            identity = self._check_new(token, now)
        if now - identity.iat > self.max_age:
            raise AuthRefused(403, "ExpiredProviderToken")
        return identity

    def _check_new(self, token: str, now: float) -> TokenIdentity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthRefused(403, "InvalidProviderToken") from exc
        key = self._keys.get(str(header.get("kid")))
        if header.get("alg") != "ES256" or key is None:
            raise AuthRefused(403, "InvalidProviderToken")
        try:
            claims = jwt.decode(token, key.public_key, algorithms=["ES256"],
                                options={"verify_exp": False, "verify_iat": False,
                                         "verify_nbf": False, "require": ["iss", "iat"]})
        except jwt.PyJWTError as exc:
            raise AuthRefused(403, "InvalidProviderToken") from exc
        iat = claims.get("iat")
        if claims.get("iss") != key.team_id or not isinstance(iat, int) or iat > now + 60:
            raise AuthRefused(403, "InvalidProviderToken")
        if now - iat > self.max_age:
            raise AuthRefused(403, "ExpiredProviderToken")
        slot = (key.team_id, key.key_id)
        latest = self._latest.get(slot)
        if latest is not None and latest[0] != token and now - latest[1] < self.update_window:
            raise AuthRefused(429, "TooManyProviderTokenUpdates")
        identity = TokenIdentity(key.key_id, key.team_id, iat,
                                 hashlib.sha256(token.encode()).hexdigest()[:16])
        self._accepted[token] = identity
        self._latest[slot] = (token, now)
        return identity


def cert_identity(der: bytes) -> CertIdentity | None:
    """Topic and environment of a client certificate (Apple's subject conventions)."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    uid = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common = str(cn[0].value) if cn else ""
    environment = "both"
    for prefix, env in _CN_ENV:
        if common.startswith(prefix):
            environment = env
            break
    topic = str(uid[0].value) if uid else common.rpartition(": ")[2]
    return CertIdentity(topic=topic, environment=environment,
                        subject=cert.subject.rfc4514_string())


class ClientCA:
    """The emulator's own CA for client (push) certificates; kept in ``directory``
    (``client-ca.pem``/``client-ca.key``) when given, so issued certificates survive a
    restart."""

    def __init__(self, directory: Path | None = None) -> None:
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                   "Clarion APNs emulator client CA")])
        cert_file = directory / "client-ca.pem" if directory else None
        key_file = directory / "client-ca.key" if directory else None
        if cert_file and key_file and cert_file.exists() and key_file.exists():
            key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            self._key = key
            self.certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
        else:
            now = dt.datetime.now(dt.UTC)
            self._key = ec.generate_private_key(ec.SECP256R1())
            self.certificate = (
                x509.CertificateBuilder().subject_name(self._name).issuer_name(self._name)
                .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=365))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .sign(self._key, hashes.SHA256())
            )
            if cert_file and key_file:
                key_file.write_bytes(self._key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption()))
                key_file.chmod(0o600)
                cert_file.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        self.pem = self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def issue(self, bundle_id: str, *, environment: str = "both",
              days: float = 365.0) -> IssuedCertificate:
        prefix = {"sandbox": "Apple Development IOS Push Services",
                  "production": "Apple Production IOS Push Services"}.get(
                      environment, "Apple Push Services")
        now = dt.datetime.now(dt.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([
            x509.NameAttribute(NameOID.USER_ID, bundle_id),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{prefix}: {bundle_id}"),
        ])
        cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(self._name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(self._key, hashes.SHA256())
        )
        key_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode("ascii")
        p12 = pkcs12.serialize_key_and_certificates(
            bundle_id.encode(), key, cert, None, serialization.NoEncryption())
        return IssuedCertificate(cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
                                 key_pem, p12)
