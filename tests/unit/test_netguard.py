"""The outbound address rules (``clarion.domain.netguard``): every notation of a non-public
address is recognised as one, and only public unicast addresses pass."""

from __future__ import annotations

import ipaddress

import pytest

from clarion.domain.netguard import (
    OutboundPolicy,
    check_url,
    is_public_address,
    parse_host_address,
    url_origin,
)
from clarion.errors import InvalidInput

pytestmark = pytest.mark.unit

# host as it appears in a URL -> the address getaddrinfo/inet_aton would connect to
LOOPBACK_NOTATIONS = [
    ("127.0.0.1", "127.0.0.1"),
    ("2130706433", "127.0.0.1"),  # one 32-bit decimal number
    ("0x7f000001", "127.0.0.1"),  # hexadecimal
    ("0X7F000001", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"),  # octal first part
    ("017700000001", "127.0.0.1"),  # one octal number
    ("127.1", "127.0.0.1"),  # short form a.b (b fills 24 bits)
    ("127.0.1", "127.0.0.1"),  # a.b.c (c fills 16 bits)
    ("0x7f.0.0.1", "127.0.0.1"),
    ("0x7f.1", "127.0.0.1"),
    ("[::1]", "::1"),
    ("::1", "::1"),
    ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),  # IPv4-mapped
    ("[::ffff:7f00:1]", "::ffff:127.0.0.1"),
    ("[64:ff9b::7f00:1]", "64:ff9b::7f00:1"),  # NAT64 well-known prefix (RFC 6052)
    ("[2002:7f00:1::]", "2002:7f00:1::"),  # 6to4 (RFC 3056) embedding 127.0.0.1
    ("[::127.0.0.1]", "::7f00:1"),  # IPv4-compatible (deprecated, RFC 4291 §2.5.5.1)
    ("[fe80::1%25eth0]", "fe80::1"),  # link-local with a zone id
]


@pytest.mark.parametrize(("host", "address"), LOOPBACK_NOTATIONS)
def test_every_notation_of_a_literal_is_parsed(host: str, address: str) -> None:
    parsed = parse_host_address(host)
    assert parsed == ipaddress.ip_address(address)
    assert not is_public_address(parsed)


@pytest.mark.parametrize("host", ["example.com", "0x7g.0.0.1", "127.0.0.1.example", "256.1",
                                  "1.2.3.4.5", "", "xn--nxasmq6b", "08.0.0.1"])
def test_names_and_impossible_numbers_are_not_literals(host: str) -> None:
    assert parse_host_address(host) is None


@pytest.mark.parametrize("address", [
    "127.0.0.2", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "255.255.255.255", "224.0.0.1", "239.255.255.250", "240.0.0.1", "192.0.2.1",
    "198.18.0.1", "::", "::1", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "2001:db8::1",
    "::ffff:10.0.0.1", "64:ff9b::a00:1", "64:ff9b:1::1", "2002:a00:1::", "2002:c0a8:101::1",
    "100::1", "::7f00:1", "2001::1",
])
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", [
    "8.8.8.8", "1.1.1.1", "142.250.74.10", "2606:4700:4700::1111", "2a00:1450:4007::200e",
    "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
])
def test_public_addresses(address: str) -> None:
    assert is_public_address(address)


@pytest.mark.parametrize("url", [
    "http://2130706433:8080/x", "http://0x7f000001/x", "http://0177.0.0.1/", "http://127.1/",
    "http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::]/", "http://224.0.0.1/",
    "http://[::127.0.0.1]/", "http://localhost./x", "http://LOCALHOST/x",
])
def test_every_notation_is_refused_at_accept_time(url: str) -> None:
    with pytest.raises(InvalidInput, match="CLARION_WEBPUSH_ALLOW_PRIVATE"):
        check_url(url, allow_private=False, what="Web Push endpoint",
                  setting="CLARION_WEBPUSH_ALLOW_PRIVATE")
    assert check_url(url, allow_private=True)


@pytest.mark.parametrize("url", ["http://1.2.3.4.5/", "http://999.1/"])
def test_numeric_hosts_that_are_no_address_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="not a valid"):
        check_url(url, allow_private=True)


def test_the_policy_trusts_operator_origins_and_takes_a_test_hook() -> None:
    loopback = ipaddress.ip_address("127.0.0.1")
    strict = OutboundPolicy(what="callback URL", setting="CLARION_WEBHOOK_ALLOW_PRIVATE")
    assert not strict.allows("hooks.test", 80, loopback)
    assert strict.allows("hooks.test", 80, ipaddress.ip_address("8.8.8.8"))
    trusting = OutboundPolicy(what="FCM token_uri", setting=None,
                              trusted=frozenset({("emulator.test", 8082)}))
    assert trusting.allows("Emulator.Test.", 8082, loopback)
    assert not trusting.allows("emulator.test", 8083, loopback)
    hooked = OutboundPolicy(what="x", setting=None,
                            is_public=lambda ip: str(ip) == "127.0.0.2" or is_public_address(ip))
    assert hooked.allows("a.test", 1, ipaddress.ip_address("127.0.0.2"))
    assert not hooked.allows("a.test", 1, loopback)
    assert OutboundPolicy(what="x", setting=None, allow_private=True).allows("a", 1, loopback)
    said = strict.refusal("evil.test", loopback)
    assert "evil.test" in said
    assert "127.0.0.1" in said
    assert "CLARION_WEBHOOK_ALLOW_PRIVATE" in said


@pytest.mark.parametrize(("url", "origin"), [
    ("https://hooks.example.com/cb?token=s3cr3t", "https://hooks.example.com:443"),
    ("http://user:pw@10.0.0.1:8080/p#f", "http://10.0.0.1:8080"),
    ("http://[::1]/x?q", "http://[::1]:80"),
    ("nonsense", "(not an http(s) URL)"),
    ("http://h:99999/", "(not an http(s) URL)"),
])
def test_logs_name_an_origin_never_the_path_query_or_credentials(url: str, origin: str) -> None:
    assert url_origin(url) == origin
