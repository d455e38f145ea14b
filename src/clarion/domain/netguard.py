"""Which addresses Clarion may connect to on a tenant's behalf (the SSRF rules; pure).

Tenants choose URLs that Clarion connects to: registration callbacks, Web Push subscription
endpoints (a browser's choice, relayed by the tenant's backend) and, through the service
account they upload, the FCM OAuth ``token_uri``. A server that connects wherever it is told
can be turned against the network it runs in (cloud metadata at 169.254.169.254, admin ports on
127.0.0.1, the intranet), so these connections only go to *public unicast* addresses unless the
operator opts in per kind of target (``OutboundPolicy.allow_private``) or names the origin
(``OutboundPolicy.trusted``: ``CLARION_FCM_URL``, an emulator).

This module owns the rules; ``clarion.providers.outbound`` owns the connection that applies
them: it resolves a name once, checks every address with ``OutboundPolicy.allows`` and connects
to exactly those addresses (no second resolution, so no DNS-rebinding window).

Literal hosts are parsed as the C library does (``inet_aton``: 2130706433, 0x7f000001,
0177.0.0.1, 127.1 are all 127.0.0.1) and IPv6 addresses that embed an IPv4 address are judged by
that address (IPv4-mapped ``::ffff:0:0/96``, NAT64 ``64:ff9b::/96`` (RFC 6052), 6to4
``2002::/16`` (RFC 3056)), so no notation slips a private address past the check.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from clarion.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")  # RFC 3056
# Never public whatever Python's tables say: local-use NAT64 (RFC 8215), IPv4-compatible
# addresses (deprecated, RFC 4291 §2.5.5.1), discard-only (RFC 6666).
_NEVER_V6 = (ipaddress.IPv6Network("64:ff9b:1::/48"), ipaddress.IPv6Network("::/96"),
             ipaddress.IPv6Network("100::/64"))
NOT_AN_ORIGIN = "(not an http(s) URL)"


def _public_v4(ip: ipaddress.IPv4Address) -> bool:
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_loopback
                                 or ip.is_link_local or ip.is_unspecified or ip.is_private)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a translated IPv6 address reaches (mapped, NAT64, 6to4), if any."""
    if ip in _MAPPED or ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _SIX_TO_FOUR:
        return ip.sixtofour
    return None


def is_public_address(address: str | IPAddress) -> bool:
    """True only for a public unicast address (not private, loopback, link-local, multicast,
    reserved, unspecified, shared, documentation, ...), judging embedded IPv4 by itself."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv4Address):
        return _public_v4(ip)
    if ip.scope_id:
        return False  # a zone only makes sense for link-local and site addresses
    inner = embedded_ipv4(ip)
    if inner is not None:
        return _public_v4(inner)
    if any(ip in net for net in _NEVER_V6):
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_loopback
                                 or ip.is_link_local or ip.is_site_local or ip.is_unspecified
                                 or ip.is_private)


def _ipv4_number(part: str) -> int | None:
    """One part of an inet_aton address: decimal, 0x hexadecimal or 0-prefixed octal."""
    if not part or not part.isascii():
        return None
    try:
        if part[:2].lower() == "0x":
            return int(part[2:], 16) if part[2:] else 0
        if len(part) > 1 and part[0] == "0":
            return int(part[1:], 8)
        return int(part, 10) if part.isdigit() else None
    except ValueError:
        return None


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """``inet_aton`` semantics (what getaddrinfo accepts): a, a.b, a.b.c or a.b.c.d, where the
    last part fills the remaining bytes."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = [_ipv4_number(p) for p in parts]
    if any(n is None for n in numbers):
        return None
    values = [n for n in numbers if n is not None]
    *head, last = values
    if any(n > 0xFF for n in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    value = last
    for i, n in enumerate(head):
        value |= n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def parse_host_address(host: str) -> IPAddress | None:
    """The address a URL host denotes when it is a literal (in any notation the C library
    accepts, brackets and IPv6 zone ids allowed); None for a name."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        text = text.split("%", 1)[0]  # the zone id (%25eth0 in a URL): not part of the address
        try:
            return ipaddress.IPv6Address(text)
        except ValueError:
            return None
    return _legacy_ipv4(text)


def looks_numeric(host: str) -> bool:
    """A host that HTTP clients take for an address literal without resolving it (digits and
    dots, or a colon). One that ``parse_host_address`` cannot read is refused, not resolved."""
    return ":" in host or (bool(host) and host.replace(".", "").isdigit())


def normal_host(host: str) -> str:
    """A host name as compared with trusted origins: lower case, no trailing dot."""
    return host.strip("[]").lower().rstrip(".")


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """The rule for one kind of tenant-chosen target.

    ``what`` names the target in messages ("Web Push endpoint"), ``setting`` the operator's
    opt-out (None when there is none). ``trusted`` holds ``(host, port)`` pairs the operator
    configured (an emulator's origin): those connect wherever they resolve. ``is_public`` is
    the address rule; tests replace it to deem one loopback address "public"."""

    what: str
    setting: str | None
    allow_private: bool = False
    trusted: frozenset[tuple[str, int]] = frozenset()
    is_public: Callable[[IPAddress], bool] = field(default=is_public_address)

    def trusts(self, host: str, port: int) -> bool:
        return self.allow_private or (normal_host(host), port) in self.trusted

    def allows(self, host: str, port: int, address: IPAddress) -> bool:
        return self.trusts(host, port) or self.is_public(address)

    def refusal(self, host: str, address: IPAddress | None = None) -> str:
        """Why a connection was refused, in Clarion's words (no URL path or query)."""
        named = address is not None and normal_host(host) != normal_host(str(address))
        where = f"{host} resolves to {address}, which is" if named else f"{address or host} is"
        said = (f"the {self.what} was refused: {where} a private, loopback, link-local, "
                "multicast or reserved address, and Clarion only connects to public addresses "
                "on a tenant's behalf")
        if self.setting:
            said += f" (an operator allows private ones with {self.setting}=1)"
        return said


def origin_of(scheme: str, host: str, port: int | None) -> str:
    """``scheme://host:port`` with the default port written out (IPv6 in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{shown}:{port or default}"


def url_origin(url: str) -> str:
    """What logs show of a tenant's URL: its origin, never credentials, path or query (a
    callback URL may carry a secret in its query)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return NOT_AN_ORIGIN
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return NOT_AN_ORIGIN
    return origin_of(scheme, parts.hostname, port)


def check_url(url: str, *, allow_private: bool, what: str = "callback URL",
              setting: str = "CLARION_WEBHOOK_ALLOW_PRIVATE") -> str:
    """Accept-time check of a tenant's URL: an absolute http(s) URL whose host is not a
    non-public literal or a local name. Returns the host; raises InvalidInput saying what is
    wrong. Names are checked again, address by address, when Clarion connects."""
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
    address = parse_host_address(host)
    if address is None and looks_numeric(host):
        raise InvalidInput(f"the host of the {what} {url!r} is not a valid address",
                           fix="Give a host name or a valid IP address.")
    if allow_private:
        return host
    name = normal_host(host)
    private = name in _LOCAL_NAMES or name.endswith(".localhost")
    if address is not None and not is_public_address(address):
        private = True
    if private:
        raise InvalidInput(
            f"the {what} {url!r} points to a private or loopback address",
            fix=f"Use a publicly reachable URL, or set {setting}=1 if Clarion should call "
            "addresses inside your network.",
        )
    return host
