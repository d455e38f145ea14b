"""The outbound client stack itself (``clarion.providers.outbound``), real sockets on 127.0.0.1
and a fake DNS: one refused address refuses the name, the resolver is asked once per new
connection and its checked answers are what is connected to, refusals and failures come out in
Clarion's words."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from clarion.domain.netguard import OutboundPolicy
from clarion.providers.base import ProviderSettings
from clarion.providers.outbound import AddressRefused, OutboundClient, Unreachable
from tests.integration.ssrf_support import (
    DEEMED_PUBLIC,
    PUBLIC_NAME,
    Target,
    network,
    start_target,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    started = await start_target()
    try:
        yield started
    finally:
        await started.stop()


def client(target: Target, *, trusted: frozenset[tuple[str, int]] = frozenset(),
           dns_cache_seconds: float = 0.0) -> OutboundClient:
    net = network(target.dns)
    policy = OutboundPolicy(what="test URL", setting="CLARION_TEST_ALLOW_PRIVATE",
                            trusted=trusted, is_public=net.is_public)
    return OutboundClient(policy, ProviderSettings(network=net, request_timeout_seconds=2),
                          dns_cache_seconds=dns_cache_seconds)


async def test_one_private_answer_refuses_the_whole_name(target: Target) -> None:
    target.dns.answers["mixed.test"] = [[(DEEMED_PUBLIC, target.decoy.port),
                                         ("127.0.0.1", target.v4.port)]]
    c = client(target)
    try:
        with pytest.raises(AddressRefused, match=r"mixed.test resolves to 127.0.0.1"):
            await c.post(f"http://mixed.test:{target.decoy.port}/x", data=b"{}")
    finally:
        await c.aclose()
    assert target.decoy.connections == 0
    assert target.silent()


async def test_the_resolver_is_asked_once_per_new_connection(target: Target) -> None:
    c = client(target)  # no DNS cache: each new connection resolves (once)
    url = f"http://{PUBLIC_NAME}:{target.decoy.port}/x"
    try:
        for _ in range(3):
            answer = await c.post(url, data=b"{}")
            assert answer.status == 201
    finally:
        await c.aclose()
    # The decoy closes nothing, so the pooled connection is reused: one resolution in all.
    assert target.dns.asked_for(PUBLIC_NAME) == target.decoy.connections


async def test_a_trusted_origin_connects_wherever_it_resolves(target: Target) -> None:
    target.dns.answers["emulator.test"] = [[("127.0.0.1", target.v4.port)]]
    c = client(target, trusted=frozenset({("emulator.test", target.v4.port)}))
    try:
        answer = await c.post(f"http://emulator.test:{target.v4.port}/token", data=b"{}")
        with pytest.raises(AddressRefused):  # the same name on another port is not trusted
            await c.post(f"http://emulator.test:{target.decoy.port}/token", data=b"{}")
    finally:
        await c.aclose()
    assert answer.status == 201
    assert len(target.v4.requests) == 1


@pytest.mark.parametrize("url", ["http://1.2.3.4.5/x", "ftp://example.test/x",
                                 "http://999.1/x", "http:///x"])
async def test_what_is_no_address_at_all_is_refused_before_any_lookup(
        target: Target, url: str) -> None:
    c = client(target)
    try:
        with pytest.raises(AddressRefused):
            await c.post(url, data=b"{}")
    finally:
        await c.aclose()
    assert target.dns.asked == []


async def test_failures_are_described_without_remote_text(target: Target) -> None:
    c = client(target)
    try:
        with pytest.raises(Unreachable) as unknown:
            await c.post("http://unknown-name.test/x", data=b"{}")
    finally:
        await c.aclose()
    assert unknown.value.reason == "ConnectionError"
    assert "could not be resolved" in unknown.value.message
