"""Which outbound URLs Clarion may call on a client's behalf (SSRF guard).

Registration callbacks (and, later, Web Push endpoints) are URLs that API callers choose. A
server that POSTs wherever it is told can be turned against the network it runs in, so URLs that
point at loopback, private, link-local or otherwise non-public addresses are refused unless the
operator opts in with ``CLARION_WEBHOOK_ALLOW_PRIVATE=1`` (tests, demos, on-premises setups).

Two checks: ``check_url`` at accept time (scheme, and the host when it is a literal address or
``localhost``) and ``is_public_address`` on every address the host name resolves to right before
connecting (a name can resolve to a private address: DNS rebinding).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from clarion.errors import InvalidInput

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, allow_private: bool, what: str = "callback URL") -> str:
    """Return the host of ``url`` or raise InvalidInput saying what is wrong with it."""
    if len(url) > 2048:
        raise InvalidInput(f"the {what} is longer than 2048 characters",
                           fix=f"Use a shorter {what}.")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise InvalidInput(f"the {what} {url!r} is not a valid URL ({exc})",
                           fix="Give an absolute http(s) URL.") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInput(f"the {what} {url!r} is not an absolute http(s) URL",
                           fix="Give an absolute URL such as https://backend.example.com/hook.")
    if allow_private:
        return host
    private = host.lower() in _LOCAL_NAMES or host.lower().endswith(".localhost")
    if not private:
        try:
            private = not is_public_address(host)
        except ValueError:
            private = False  # a host name: checked again on resolution before connecting
    if private:
        raise InvalidInput(
            f"the {what} {url!r} points to a private or loopback address",
            fix="Use a publicly reachable URL, or set CLARION_WEBHOOK_ALLOW_PRIVATE=1 if "
            "Clarion should call addresses inside your network.",
        )
    return host
