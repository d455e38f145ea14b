"""What the SSRF tests share: listeners that must stay silent, a fake DNS, the URL matrix.

Every case aims a tenant-chosen URL at a listener on 127.0.0.1 (or ::1) written another way
(decimal, hex, octal, short, IPv6, IPv4-mapped, NAT64, 6to4, a name that resolves to it, a name
that rebinds to it, a redirect to it). The listener records every connection it accepts: the
tests assert it accepted none. Nothing here reaches outside 127.0.0.0/8 and ::1.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from clarion.domain.netguard import IPAddress, is_public_address
from clarion.providers.base import Network

LOOPBACK_NAME = "loopback.ssrf.test"  # the fake DNS answers 127.0.0.1
REBIND_NAME = "rebind.ssrf.test"  # the fake DNS answers 127.0.0.2, then 127.0.0.1
PUBLIC_NAME = "public.ssrf.test"  # always 127.0.0.2: a "public" server (redirect cases)
DEEMED_PUBLIC = "127.0.0.2"  # what the rebinding cases' policy hook calls public


class Listener:
    """A TCP listener that records every connection and answers its one request with
    ``answer`` (raw HTTP/1.1 bytes, or a function of the request), then closes it."""

    def __init__(self, host: str = "127.0.0.1", *,
                 answer: bytes | Callable[[bytes], bytes] =
                 b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                 ) -> None:
        self.host = host
        self.port = 0
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None

    async def start(self, port: int = 0) -> Listener:
        self._server = await asyncio.start_server(self._handle, self.host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
            self.requests.append(head + body)
            writer.write(self.answer(head + body) if callable(self.answer) else self.answer)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@dataclass
class FakeDns:
    """Names → successive answers (the last one repeats); every question is recorded."""

    answers: dict[str, list[list[tuple[str, int]]]] = field(default_factory=dict)
    asked: list[tuple[str, int]] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> Sequence[tuple[str, int]]:
        self.asked.append((host, port))
        queue = self.answers.get(host.rstrip("."))
        if not queue:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def asked_for(self, host: str) -> int:
        return sum(1 for h, _ in self.asked if h.rstrip(".") == host)


def deem_public(address: IPAddress) -> bool:
    """The rebinding cases' policy hook: 127.0.0.2 stands for a public address."""
    return str(address) == DEEMED_PUBLIC or is_public_address(address)


def network(dns: FakeDns) -> Network:
    return Network(resolve=dns, is_public=deem_public)


@dataclass
class Target:
    """A loopback listener on 127.0.0.1, one on ::1, one on 127.0.0.2 (the "public" address
    a rebinding name answers first) and the fake DNS pointing names at them."""

    v4: Listener
    v6: Listener
    decoy: Listener
    dns: FakeDns

    def hosts(self) -> dict[str, str]:
        """Case id → ``host:port`` aimed at a loopback listener."""
        p, q = self.v4.port, self.v6.port
        return {
            "literal": f"127.0.0.1:{p}", "decimal": f"2130706433:{p}",
            "hex": f"0x7f000001:{p}", "octal": f"0177.0.0.1:{p}", "short": f"127.1:{p}",
            "ipv6": f"[::1]:{q}", "ipv4-mapped": f"[::ffff:127.0.0.1]:{p}",
            "nat64": f"[64:ff9b::7f00:1]:{p}", "6to4": f"[2002:7f00:1::]:{p}",
            "name": f"{LOOPBACK_NAME}:{p}", "rebinding": f"{REBIND_NAME}:{p}",
        }

    def silent(self) -> bool:
        """No loopback listener saw a connection (127.0.0.2 is the checked, "public" one)."""
        return self.v4.connections == 0 and self.v6.connections == 0

    async def stop(self) -> None:
        for listener in (self.v4, self.v6, self.decoy):
            await listener.stop()


CASES = ["literal", "decimal", "hex", "octal", "short", "ipv6", "ipv4-mapped", "nat64", "6to4",
         "name", "rebinding"]


async def start_target() -> Target:
    v4 = await Listener("127.0.0.1").start()
    v6 = await Listener("::1").start()
    decoy = await Listener(DEEMED_PUBLIC).start()
    dns = FakeDns({
        LOOPBACK_NAME: [[("127.0.0.1", v4.port)]],
        # Asked once, the name is the "public" decoy; a second question would get loopback.
        REBIND_NAME: [[(DEEMED_PUBLIC, decoy.port)], [("127.0.0.1", v4.port)]],
        PUBLIC_NAME: [[(DEEMED_PUBLIC, decoy.port)]],
    })
    return Target(v4, v6, decoy, dns)


def redirect_to(url: str) -> bytes:
    return (f"HTTP/1.1 307 Temporary Redirect\r\nlocation: {url}\r\ncontent-length: 0\r\n"
            "connection: close\r\n\r\n").encode()


def http_answer(status: int, body: bytes = b"", content_type: str = "application/json") -> bytes:
    reason = {200: "OK", 201: "Created"}.get(status, "Status")
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body
