"""Transport failures in Clarion's words: no URL path or query, no remote text."""

from __future__ import annotations

import errno
import ssl

import aiohttp
import pytest

from clarion.providers.outbound import describe

pytestmark = pytest.mark.unit

SECRET_URL = "http://hooks.test/cb?token=s3cr3t"


@pytest.mark.parametrize(("exc", "reason", "words"), [
    (TimeoutError(), "Timeout", "no answer within 5 s"),
    (aiohttp.ClientOSError(None, f"Can not write request body for {SECRET_URL}"),
     "ConnectionError", "ClientOSError"),
    (aiohttp.ClientOSError(errno.ECONNRESET, f"reset while talking to {SECRET_URL}"),
     "ConnectionError", "Connection reset by peer"),
    (aiohttp.ServerDisconnectedError(f"{SECRET_URL} went away"), "ConnectionError",
     "closed the connection"),
    (aiohttp.InvalidURL(SECRET_URL), "ConnectionError", "InvalidURL"),
    (ssl.SSLError(1, f"alert from {SECRET_URL}"), "TLSError", "TLS handshake failed"),
    (ValueError(SECRET_URL), "ConnectionError", "ValueError"),
])
def test_failures_never_quote_the_url(exc: BaseException, reason: str, words: str) -> None:
    said = describe(exc, timeout=5)
    assert said.reason == reason
    assert words in said.message
    assert "s3cr3t" not in said.message
    assert "/cb" not in said.message
