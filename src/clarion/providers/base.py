"""What every provider adapter shares: its settings and the TLS context it trusts.

Adapters implement ``clarion.domain.outcomes.Sender`` (``send(credentials, batch)``) and
``aclose()``. One adapter instance per platform serves every app of the installation: it keys
its connections and token caches by the app's credentials.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from clarion.domain.netguard import IPAddress, is_public_address
from clarion.domain.outcomes import Sender

# (host, port) -> the (address, port) pairs to connect to: ``getaddrinfo`` by default.
Resolve = Callable[[str, int], Awaitable[Sequence[tuple[str, int]]]]


@dataclass(frozen=True, slots=True)
class Network:
    """What tests replace about the network: name resolution (a fake DNS) and which
    addresses count as public (to deem one loopback address "public" in a rebinding test)."""

    resolve: Resolve | None = None  # None: the system resolver
    is_public: Callable[[IPAddress], bool] = field(default=is_public_address)


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    apns_url: str | None = None  # replaces https://api(.sandbox).push.apple.com
    fcm_url: str | None = None  # replaces https://fcm.googleapis.com
    ca_file: Path | None = None  # extra CA bundle trusted for provider connections
    request_timeout_seconds: float = 30.0
    apns_connections: int = 2  # HTTP/2 connections per APNs credential + host
    fcm_connections: int = 100  # pooled HTTP/1.1 connections per FCM project
    webpush_connections: int = 100
    webpush_allow_private: bool = False  # CLARION_WEBPUSH_ALLOW_PRIVATE
    network: Network = field(default_factory=Network)


class ClosableSender(Sender, Protocol):
    async def aclose(self) -> None: ...


def client_ssl_context(settings: ProviderSettings, *, alpn: list[str] | None = None
                       ) -> ssl.SSLContext:
    """The system trust store plus ``CLARION_CA_FILE`` (emulators, corporate proxies)."""
    ctx = ssl.create_default_context()
    if settings.ca_file is not None:
        ctx.load_verify_locations(cafile=str(settings.ca_file))
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx
