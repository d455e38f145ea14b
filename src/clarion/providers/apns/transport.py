"""What a request to APNs ends in: an HTTP answer (``Response``) or, when there is none, a
``TransportError`` saying whether the request may be sent again at once.

Connection failures are worded for a person; a TLS alert about the client certificate under
certificate auth is the app's credential problem (APNs checks certificates in the handshake).
"""

from __future__ import annotations

import ssl
from typing import NamedTuple


class Response(NamedTuple):
    status: int
    apns_id: str | None
    retry_after: bytes | None
    body: bytes


class TransportError(Exception):
    """A send that got no APNs answer. ``retry_safe``: the server certainly did not process
    it (not written, refused, above a GOAWAY's last stream id), so it may be sent again at
    once. ``credential``: the TLS peer refused the client certificate."""

    def __init__(self, reason: str, detail: str, *, retry_safe: bool = False,
                 credential: bool = False) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.retry_safe = retry_safe
        self.credential = credential


def tls_error(exc: BaseException, *, credential_auth: bool) -> TransportError:
    """A connection failure, worded for a person. A TLS alert about our certificate under
    certificate auth is the app's credential problem (APNs refuses bad certificates during
    the handshake)."""
    text = str(exc) or type(exc).__name__
    upper = text.upper()
    if credential_auth and isinstance(exc, ssl.SSLError) and "ALERT" in upper and any(
            w in upper for w in ("CERTIFICATE", "UNKNOWN_CA", "UNKNOWN CA")):
        return TransportError("BadCertificate", f"APNs refused the app's client certificate "
                              f"during the TLS handshake ({text}): upload a valid push "
                              "certificate (.p12) for this app", credential=True)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TransportError("TLSError", f"the APNs server's certificate is not trusted "
                              f"({text}): when CLARION_APNS_URL points at an emulator, set "
                              "CLARION_CA_FILE to its CA file (read once: restart Clarion "
                              "when the emulator makes a new CA)")
    return TransportError("ConnectionError", f"could not talk to APNs ({text})")
