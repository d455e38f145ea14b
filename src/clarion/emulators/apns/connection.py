"""One emulator connection: the ``h2`` server side of ``ApnsEmulator`` (see ``server``).

Reads requests, applies the connection faults (drop, GOAWAY, latency), asks the verifier for
the answer, records it and writes it back. ``h2`` moves to CLOSED when it sends GOAWAY
(python-hyper/h2#1181); the state is put back to open so streams at or below last_stream_id
can still be answered, as RFC 9113 §6.8 allows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from h2.config import H2Configuration
from h2.connection import ConnectionState, H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RequestReceived,
    SettingsAcknowledged,
    StreamEnded,
    StreamReset,
)
from h2.exceptions import H2Error
from h2.settings import SettingCodes, Settings

from clarion.emulators.apns.keys import CertIdentity, cert_identity
from clarion.emulators.apns.records import Received
from clarion.emulators.apns.verifier import SINGLE_HEADERS, Answer, Request

if TYPE_CHECKING:
    from clarion.emulators.apns.server import ApnsEmulator


_UNLIMITED = 2**31 - 1


class _AdvertisedLimit(Settings):
    """Local settings whose MAX_CONCURRENT_STREAMS is advertised but not enforced by ``h2``.

    ``h2`` turns a stream over the limit into a connection error; RFC 9113 §5.1.2 asks for a
    stream error (REFUSED_STREAM), and a client may open streams before it has seen the
    server's SETTINGS (the initial limit is unlimited). The connection enforces the limit
    itself once the client acknowledged it.
    """

    @property
    def max_concurrent_streams(self) -> int:
        return _UNLIMITED

    @max_concurrent_streams.setter
    def max_concurrent_streams(self, value: int) -> None:
        self[SettingCodes.MAX_CONCURRENT_STREAMS] = value

    @property
    def advertised(self) -> int:
        return self.get(SettingCodes.MAX_CONCURRENT_STREAMS, _UNLIMITED)


class _H2(H2Connection):
    """``h2`` counts open streams by scanning all of them for each new stream (O(n), most of
    the emulator's CPU with hundreds of streams in flight); the connection keeps the count, and
    the scan (which also forgets closed streams) runs once every 64 new streams."""

    def __init__(self, config: H2Configuration, open_count: Callable[[], int]) -> None:
        super().__init__(config=config)
        self._open_count = open_count
        self._new_streams = 0

    @property
    def open_inbound_streams(self) -> int:
        self._new_streams += 1
        if self._new_streams % 64 == 0:
            return self._open_streams(1)
        return self._open_count()


@dataclass
class _Pending:
    headers: list[tuple[bytes, bytes]]
    body: bytearray = field(default_factory=bytearray)


class EmulatorConnection(asyncio.Protocol):
    _next_id = 0

    def __init__(self, emu: ApnsEmulator) -> None:
        self.emu = emu
        EmulatorConnection._next_id += 1
        self.number = EmulatorConnection._next_id
        self.transport: asyncio.Transport | None = None
        self.h2 = _H2(H2Configuration(client_side=False, header_encoding=None),
                      lambda: self.open_streams)
        self.pending: dict[int, _Pending] = {}
        self.open_streams = 0
        self.count = 0
        self.cert: CertIdentity | None = None
        self.gate_open = False
        self.settings_acked = False
        self.limits = _AdvertisedLimit(client=False)
        self.goaway_last: int | None = None
        self.unanswered: set[int] = set()
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's is not a subclass
        self.emu._conns.add(self)
        self.emu.stats.connections += 1
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
            transport.close()  # APNs speaks HTTP/2 only
            return
        der = ssl_object.getpeercert(binary_form=True)
        self.cert = cert_identity(der) if der else None
        self.gate_open = self.cert is not None
        first = self.emu.max_streams if self.gate_open else 1
        self.limits = _AdvertisedLimit(client=False, initial_values={
            SettingCodes.MAX_CONCURRENT_STREAMS: first})
        self.h2.local_settings = self.limits
        self.h2.initiate_connection()
        self._write()

    def connection_lost(self, exc: Exception | None) -> None:
        self.emu._conns.discard(self)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except H2Error as exc:
            self.emu.violations.append(f"connection {self.number}: {exc}")
            self._write()
            if self.transport is not None:
                self.transport.close()
            return
        for event in events:
            if isinstance(event, RequestReceived):
                if self.settings_acked and self.open_streams >= self.limits.advertised:
                    self.h2.reset_stream(event.stream_id, ErrorCodes.REFUSED_STREAM)
                    self.emu.stats.refused += 1
                    self.emu.violations.append(
                        f"connection {self.number}: stream {event.stream_id} opened over "
                        f"SETTINGS_MAX_CONCURRENT_STREAMS={self.limits.advertised}: refused")
                    continue
                self.pending[event.stream_id] = _Pending(list(event.headers))
                self.open_streams += 1
                self.emu.stats.max_concurrent = max(self.emu.stats.max_concurrent,
                                                    self.open_streams)
            elif isinstance(event, DataReceived):
                if event.flow_controlled_length:
                    self.h2.acknowledge_received_data(event.flow_controlled_length,
                                                      event.stream_id)
                pending = self.pending.get(event.stream_id)
                if pending is not None:
                    pending.body += event.data
            elif isinstance(event, StreamEnded):
                pending = self.pending.pop(event.stream_id, None)
                if pending is not None:
                    self._handle(event.stream_id, pending)
            elif isinstance(event, StreamReset):
                if self.pending.pop(event.stream_id, None) is not None:
                    self.open_streams -= 1
                self.unanswered.discard(event.stream_id)
            elif isinstance(event, SettingsAcknowledged):
                self.settings_acked = True
            elif isinstance(event, ConnectionTerminated) and self.transport is not None:
                self.transport.close()
        self._write()

    def _handle(self, sid: int, pending: _Pending) -> None:
        if self.goaway_last is not None and sid > self.goaway_last:
            self.open_streams -= 1
            return  # RFC 9113 §6.8: not processed; the client retries it elsewhere
        emu = self.emu
        headers: dict[str, str] = {}
        duplicate = False
        method = path = ""
        for raw_name, raw_value in pending.headers:
            name = raw_name.decode("latin-1")
            value = raw_value.decode("latin-1")
            if name == ":method":
                method = value
            elif name == ":path":
                path = value
            if raw_name in SINGLE_HEADERS and name in headers:
                duplicate = True
            headers[name] = value
        if path.startswith("/_emulator/"):
            status, body = emu.admin(method, path, bytes(pending.body))
            self._send(sid, status, None, body, None)
            return
        self.count += 1
        if emu.drop_every and self.count % emu.drop_every == 0:
            emu.stats.drops += 1
            emu.record(self._record(sid, method, path, headers, pending, None))
            self.abort()
            return
        if emu.goaway_every and self.count % emu.goaway_every == 0 and self.goaway_last is None:
            self._goaway(sid)
        req = Request(method=method, path=path, headers=headers, duplicate=duplicate,
                      body=bytes(pending.body), cert=self.cert)
        ans = emu.verifier.answer(req)
        emu.record(self._record(sid, method, path, headers, pending, ans))
        if ans.jwt is not None and not self.gate_open:
            # Apple: one stream until a valid JWT has been seen, then the full limit.
            self.gate_open = True
            self.h2.update_settings({SettingCodes.MAX_CONCURRENT_STREAMS: emu.max_streams})
        extra = [(b"retry-after", ans.retry_after.encode())] if ans.retry_after else None
        self.unanswered.add(sid)
        if emu.latency_ms > 0:
            self.loop.call_later(emu.latency_ms / 1000, self._send, sid, ans.status,
                                 ans.apns_id, ans.body(), extra)
        else:
            self._send(sid, ans.status, ans.apns_id, ans.body(), extra)

    def _goaway(self, last: int) -> None:
        self.goaway_last = last
        self.emu.stats.goaways += 1
        self.h2.close_connection(ErrorCodes.NO_ERROR, b'{"reason":"Shutdown"}', last)
        # python-hyper/h2#1181: keep answering streams <= last (RFC 9113 §6.8).
        self.h2.state_machine.state = ConnectionState.SERVER_OPEN

    def _send(self, sid: int, status: int, apns_id: str | None, body: bytes,
              extra: list[tuple[bytes, bytes]] | None) -> None:
        self.unanswered.discard(sid)
        if self.transport is None or self.transport.is_closing():
            return
        headers = [(b":status", str(status).encode())]
        if apns_id is not None:
            headers.append((b"apns-id", apns_id.encode()))
        if body:
            headers += [(b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())]
        if extra:
            headers += extra
        try:
            self.h2.send_headers(sid, headers, end_stream=not body)
            if body:
                self.h2.send_data(sid, body, end_stream=True)
        except H2Error:
            pass  # the client reset the stream meanwhile
        self.open_streams -= 1
        self._write()
        if self.goaway_last is not None and not self.unanswered:
            self.transport.close()

    def _write(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _record(self, sid: int, method: str, path: str, headers: dict[str, str],
                pending: _Pending, ans: Answer | None) -> Received:
        shown = {k: v for k, v in headers.items() if k != "authorization"}
        auth = ("token" if "authorization" in headers
                else "certificate" if self.cert is not None else None)
        return Received(
            time=self.emu.clock(), connection=self.number, stream_id=sid, method=method,
            path=path, token=path.rpartition("/")[2] or None, headers=shown, auth=auth,
            jwt=ans.jwt.as_dict() if ans is not None and ans.jwt is not None else None,
            payload=ans.payload if ans is not None else None,
            payload_bytes=len(pending.body),
            status=ans.status if ans is not None else None,
            reason=ans.reason if ans is not None else "dropped",
            apns_id=ans.apns_id if ans is not None else None)
