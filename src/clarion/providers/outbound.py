"""The one HTTP/1.1 client stack for connections Clarion makes on a tenant's behalf.

Web Push endpoints, the FCM OAuth ``token_uri``, registration callbacks and FCM itself all go
through ``OutboundClient``: one aiohttp session per kind of target, each under an
``OutboundPolicy`` (``clarion.domain.netguard``). Why one stack: the SSRF rules are then
applied in exactly one place, the same way for every kind, and anything added later gets them
by using it (issue 11 also asks for one HTTP/1.1 client for FCM, Web Push, OAuth and callbacks).
APNs is not here: it is HTTP/2 to an operator-configured host (``providers/apns``).

How the policy is applied, and why it cannot be raced:

- ``GuardedResolver`` is the connector's aiohttp ``AbstractResolver``. It resolves a name
  **once**, checks **every** address with the policy (one refused address refuses the name) and
  returns exactly those addresses; aiohttp then connects to them, keeping the name for TLS SNI,
  certificate checks and ``Host``. There is no second resolution between the check and the
  connection, so a name that answers a public address to the check and 127.0.0.1 to the
  connection (DNS rebinding) cannot get through. aiohttp caches what the resolver returned, so
  cached addresses are checked ones too.
- aiohttp skips the resolver for literal addresses, so ``check_target`` applies the same policy
  to a literal host before the request (every notation: ``netguard.parse_host_address``); a
  numeric host that is no address at all is refused rather than handed to the C library.
- Redirects are never followed: a 3xx is an answer like any other, and callers treat it as a
  failure (a redirect is how a public host would point Clarion at a private one).

Failures come out as two exceptions whose messages are Clarion's words and name no URL path or
query: ``AddressRefused`` (the policy said no; nothing was sent) and ``Unreachable`` (no answer:
``reason`` is ``Timeout``, ``TLSError`` or ``ConnectionError``). A remote body is returned to
the caller as bytes and never put into a message here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from clarion.domain.netguard import (
    OutboundPolicy,
    looks_numeric,
    normal_host,
    parse_host_address,
)
from clarion.providers.base import Network, ProviderSettings, Resolve, client_ssl_context

_NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV


class AddressRefused(Exception):
    """The policy refused the target: nothing was sent. Not an ``OSError`` on purpose, so that
    aiohttp lets it through from the resolver instead of calling it a DNS failure."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unreachable(Exception):
    """No answer was read. ``reason``: ``Timeout``, ``TLSError`` or ``ConnectionError``;
    ``message``: what happened, in Clarion's words (local facts only: no remote text)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes  # at most the read limit; remote text: never shown to a tenant as is


async def system_resolve(host: str, port: int) -> list[tuple[str, int]]:
    """``getaddrinfo`` (the system resolver, /etc/hosts included), TCP only."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [(str(info[4][0]), int(info[4][1])) for info in infos]


class GuardedResolver(AbstractResolver):
    """Resolve once, refuse the name if any address is refused, return the checked ones."""

    def __init__(self, policy: OutboundPolicy, resolve: Resolve | None = None) -> None:
        self._policy = policy
        self._resolve = resolve or system_resolve

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        literal = parse_host_address(host)  # 0x7f000001 and friends: what the C library reads
        try:
            answers = ([(str(literal), port)] if literal is not None
                       else await self._resolve(host, port))
        except OSError as exc:
            raise Unreachable("ConnectionError", f"{host} could not be resolved") from exc
        results: list[ResolveResult] = []
        for address, answer_port in answers:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if not self._policy.allows(host, port, ip):
                raise AddressRefused(self._policy.refusal(host, ip))
            v6 = isinstance(ip, ipaddress.IPv6Address)
            if family not in (socket.AF_UNSPEC, socket.AF_INET6 if v6 else socket.AF_INET):
                continue
            results.append(ResolveResult(
                hostname=host, host=str(ip), port=answer_port,
                family=socket.AF_INET6 if v6 else socket.AF_INET, proto=0, flags=_NUMERIC))
        if not results:
            raise Unreachable("ConnectionError", f"{host} has no address")
        return results

    async def close(self) -> None:
        return None


def check_target(policy: OutboundPolicy, url: URL) -> None:
    """The policy for what the resolver never sees: the scheme and literal address hosts."""
    host = url.raw_host
    if url.scheme not in ("http", "https") or not host:
        raise AddressRefused(f"the {policy.what} is not an absolute http(s) URL")
    address = parse_host_address(host)
    if address is None:
        if looks_numeric(host):
            raise AddressRefused(f"the {policy.what} host {host} is not a valid address")
        return  # a name: checked by GuardedResolver, address by address
    if not policy.allows(host, url.port or 0, address):
        raise AddressRefused(policy.refusal(host, address))


def describe(exc: BaseException, *, timeout: float) -> Unreachable:
    """A transport failure in Clarion's words (no remote text: OS and OpenSSL facts only)."""
    if isinstance(exc, Unreachable):
        return exc
    if isinstance(exc, TimeoutError):
        return Unreachable("Timeout", f"no answer within {timeout:g} s")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert = exc.certificate_error
        why = getattr(cert, "verify_message", None) or "the certificate was not accepted"
        return Unreachable("TLSError", f"the TLS certificate was refused ({why})")
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return Unreachable("TLSError", "the TLS handshake failed")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return Unreachable("ConnectionError", f"the connection failed "
                           f"({_os_words(exc.os_error)})")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return Unreachable("ConnectionError", "the server closed the connection without an "
                           "answer")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return Unreachable("ConnectionError", "the answer could not be read")
    return Unreachable("ConnectionError", f"the connection failed ({_os_words(exc)})")


def _os_words(exc: BaseException) -> str:
    """The system's words for an error number (aiohttp's own messages quote the URL)."""
    number = getattr(exc, "errno", None)
    if isinstance(number, int) and number > 0:
        return os.strerror(number)
    return type(exc).__name__


async def _read(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """Up to ``limit`` bytes of the body (reading it all lets the connection be reused)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await response.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class OutboundClient:
    """An aiohttp session for one kind of target under one policy (created on first use: a
    session belongs to the running event loop).

    ``limit_per_host`` bounds pooled connections per host; ``dns_cache_seconds`` how long the
    checked addresses of a name are reused (0: resolve for every new connection)."""

    def __init__(self, policy: OutboundPolicy, settings: ProviderSettings, *,
                 timeout: float | None = None, limit: int = 0, limit_per_host: int = 0,
                 dns_cache_seconds: float = 10.0, keepalive_seconds: float = 15.0,
                 headers: Mapping[str, str] | None = None, auto_decompress: bool = True,
                 ssl_context: ssl.SSLContext | None = None, network: Network | None = None
                 ) -> None:
        self.policy = policy
        self._settings = settings
        self._network = network or settings.network
        self.timeout = timeout or settings.request_timeout_seconds
        self._limit, self._limit_per_host = limit, limit_per_host
        self._dns_cache = dns_cache_seconds
        self._keepalive = keepalive_seconds
        self._headers = dict(headers or {})
        self._decompress = auto_decompress
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """The session (callers that stream use it directly, after ``check``)."""
        if self._session is None or self._session.closed:
            if self._ssl is None:
                self._ssl = client_ssl_context(self._settings)
            connector = aiohttp.TCPConnector(
                limit=self._limit, limit_per_host=self._limit_per_host, ssl=self._ssl,
                resolver=GuardedResolver(self.policy, self._network.resolve),
                use_dns_cache=self._dns_cache > 0, ttl_dns_cache=int(self._dns_cache) or None,
                keepalive_timeout=self._keepalive)
            self._session = aiohttp.ClientSession(
                connector=connector, headers=self._headers, auto_decompress=self._decompress,
                timeout=aiohttp.ClientTimeout(total=self.timeout), trust_env=False)
        return self._session

    def check(self, url: str | URL) -> URL:
        """The parsed URL, once the policy allows its literal host (names: at resolution)."""
        try:
            parsed = url if isinstance(url, URL) else URL(url)
        except (ValueError, TypeError) as exc:
            raise AddressRefused(f"the {self.policy.what} is not a valid URL") from exc
        check_target(self.policy, parsed)
        return parsed

    async def post(self, url: str | URL, *, data: bytes,
                   headers: Mapping[str, str] | None = None,
                   read_limit: int = 65_536) -> Answer:
        """POST once, no redirect followed; the answer's first ``read_limit`` body bytes.

        Raises ``AddressRefused`` (nothing sent) or ``Unreachable`` (no answer)."""
        target = self.check(url)
        try:
            async with self.session().post(target, data=data, headers=headers,
                                           allow_redirects=False) as response:
                body = await _read(response, read_limit)
                return Answer(response.status, response.headers, body)
        except AddressRefused:
            raise
        except (TimeoutError, aiohttp.ClientError, OSError, ssl.SSLError,
                Unreachable) as exc:
            refused = _refusal_inside(exc)
            if refused is not None:
                raise refused from exc
            raise describe(exc, timeout=self.timeout) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _refusal_inside(exc: BaseException) -> AddressRefused | None:
    """An ``AddressRefused`` that an aiohttp version wrapped on its way out, if any."""
    seen: Any = exc
    for _ in range(4):
        if isinstance(seen, AddressRefused):
            return seen
        seen = getattr(seen, "os_error", None) or seen.__cause__
        if seen is None:
            return None
    return None


def trusted_origins(*urls: str | None) -> frozenset[tuple[str, int]]:
    """The ``(host, port)`` pairs of operator-configured URLs (``CLARION_FCM_URL``...)."""
    out: set[tuple[str, int]] = set()
    for url in urls:
        if not url:
            continue
        parsed = URL(url)
        if parsed.raw_host and parsed.port:
            out.add((normal_host(parsed.raw_host), parsed.port))
    return frozenset(out)


def json_object(body: bytes) -> Mapping[str, Any] | None:
    """A JSON object body, or None (read for its documented fields, never echoed)."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None
