"""One HTTP/2 connection to APNs: an ``asyncio.Protocol`` driving a ``jh2`` state machine.

Why hand-written on ``jh2`` rather than a client library: aioapns cannot be pointed at another
host without subclassing, does not set ALPN ``h2`` (nginx and strict servers drop it), breaks on
an empty DATA frame and hangs when a server does not echo ``apns-id``; httpx/niquests reach a
third of the throughput (see performance notes). ``jh2`` is the maintained fork of ``h2`` (same
API, used by niquests/urllib3-future) whose HPACK encoder/decoder is compiled: HPACK was half of
the CPU of a send on pure-Python ``h2``, and the adapter alone sends twice as many notifications
per CPU-second with ``jh2`` (bench/delivery). The APNs emulator stays on ``h2``, so the wire
tests check one implementation against another. ``jh2`` does the framing, HPACK and
flow-control accounting; this module adds what APNs needs around it:

- ALPN ``h2`` is required; the server's first SETTINGS is awaited before any stream is opened.
- Concurrency follows the server's ``SETTINGS_MAX_CONCURRENT_STREAMS`` (RFC 9113 §6.5.2). With
  token auth only ONE stream is used until a response shows the JWT was accepted (Apple,
  "Establishing a token-based connection": "only one stream is allowed until a valid JWT has
  been seen").
- Requests written in the same event-loop tick go out in one ``write`` (one TLS record run).
- Received DATA is acknowledged (RFC 9113 §6.9); a body larger than the send window waits
  for WINDOW_UPDATE.
- GOAWAY (RFC 9113 §6.8): streams above ``last_stream_id`` were not processed and fail with a
  retry-safe error; streams at or below it still complete. ``h2``/``jh2`` moves its state machine
  to CLOSED on GOAWAY and would refuse their answers (python-hyper/h2#1181), so the state is put
  back to open for those streams only; no new stream is opened on that connection.
- RST_STREAM after a complete answer (nginx sends NO_ERROR) is ignored; REFUSED_STREAM before
  an answer is retry-safe (RFC 9113 §8.7).
- A stream without an answer after ``timeout`` seconds fails with ``Timeout`` (the caller
  reports RETRY_LATER, never a silent outcome) and is reset with CANCEL.
- PING keepalive after ``ping_interval`` idle seconds; no PING ACK within ``ping_timeout``
  closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import cast

from jh2.errors import ErrorCodes
from jh2.events import (
    ConnectionTerminated,
    DataReceived,
    PingAckReceived,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from jh2.exceptions import H2Error, NoAvailableStreamIDError

from clarion.providers.apns.framing import CountingH2, StreamState, client_config
from clarion.providers.apns.streams import ApnsStreams
from clarion.providers.apns.transport import Response, TransportError, tls_error

# More streams than this per connection buy nothing for small POSTs and cost memory.
STREAM_CAP = 1000
_TICK_SECONDS = 0.5


class ApnsConnection(ApnsStreams, asyncio.Protocol):
    """An HTTP/2 connection carrying APNs requests; see the module docstring (its streams'
    events are handled by ``ApnsStreams``)."""

    def __init__(self, *, token_auth: bool, timeout: float,
                 on_change: Callable[[ApnsConnection], None],
                 ping_interval: float = 60.0, ping_timeout: float = 20.0,
                 credential_auth: bool = False) -> None:
        self._streams: dict[int, StreamState] = {}
        self._h2 = CountingH2(client_config(), lambda: len(self._streams))
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._unflushed: list[StreamState] = []
        self._blocked: dict[int, StreamState] = {}
        self._flush_handle: asyncio.Handle | None = None
        self._tick_handle: asyncio.TimerHandle | None = None
        self._timeout = timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._ping_sent_at: float | None = None
        self._last_seen = self._loop.time()
        self._on_change = on_change
        self._credential_auth = credential_auth
        self.ready: asyncio.Future[None] = self._loop.create_future()
        self.auth_ok = not token_auth  # token auth: one stream until a JWT was accepted
        self.closed = False
        self.goaway: tuple[int, str] | None = None  # (last_stream_id, reason) once received
        # The authorization value APNs last refused with 403, why, and when (loop time).
        self.rejected: tuple[bytes, str, float] | None = None

    # --- state seen by the pool ------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return not self.closed and self.goaway is None and self.ready.done() \
            and self.ready.exception() is None

    @property
    def active(self) -> int:
        return len(self._streams)

    @property
    def capacity(self) -> int:
        """How many more streams may be opened now."""
        if not self.usable:
            return 0
        if not self.auth_ok:
            return 1 - len(self._streams)
        limit: int = min(self._h2.remote_settings.max_concurrent_streams, STREAM_CAP)
        return limit - len(self._streams)

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's SSL transport is not an asyncio.Transport subclass but has its methods.
        self._transport = cast("asyncio.Transport", transport)
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        if alpn != "h2":
            self._fail_ready(TransportError(
                "ConnectionError", f"the APNs server did not agree to HTTP/2 (ALPN gave "
                f"{alpn!r}): APNs_URL must point at an HTTP/2 server such as APNs or "
                "`clarion emulator apns`"))
            transport.close()
            return
        self._h2.initiate_connection()
        self._write_now()
        self._tick_handle = self._loop.call_later(_TICK_SECONDS, self._tick)

    def data_received(self, data: bytes) -> None:
        self._last_seen = self._loop.time()
        try:
            events = self._h2.receive_data(data)
        except H2Error as exc:
            self._abort(TransportError("ConnectionError", f"APNs broke the HTTP/2 protocol "
                                       f"({exc}): reconnecting"))
            return
        h2 = self._h2
        streams = self._streams
        changed = False
        for event in events:
            kind = type(event)
            if kind is ResponseReceived or kind is TrailersReceived:
                st = streams.get(event.stream_id)
                if st is not None:
                    st.headers += event.headers
            elif kind is DataReceived:
                sid = event.stream_id
                size = event.flow_controlled_length
                if size:
                    h2.acknowledge_received_data(size, sid)
                st = streams.get(sid)
                if st is not None and event.data:
                    st.body += event.data
            elif kind is StreamEnded:
                st = streams.pop(event.stream_id, None)
                if st is not None:
                    self._complete(st)
                    changed = True
            elif kind is StreamReset:
                changed |= self._on_reset(event)
            elif kind is WindowUpdated:
                self._resume_blocked()
            elif kind is RemoteSettingsChanged:
                changed = True
                if not self.ready.done():
                    self.ready.set_result(None)
            elif kind is PingAckReceived:
                self._ping_sent_at = None
            elif kind is ConnectionTerminated:
                self._on_goaway(event)
                changed = True
        self._write_now()
        if changed:
            self._on_change(self)
        if self.goaway is not None and not self._streams and not self.closed:
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            error = tls_error(exc, credential_auth=self._credential_auth)
        elif self._credential_auth and not self.ready.done():
            error = TransportError(
                "ConnectionError", "APNs closed the connection during the TLS handshake: if "
                "this repeats, the app's push certificate is being refused (expired, revoked, "
                "not issued by Apple, or for the other environment)")
        else:
            error = TransportError("ConnectionError", "APNs closed the connection")
        self._shutdown(error)

    # --- requests --------------------------------------------------------------------------

    def submit(self, headers: list[tuple[bytes, bytes]], body: bytes,
               auth: bytes = b"") -> asyncio.Future[Response]:
        """Open a stream for one request; the future resolves with the answer or fails with
        ``TransportError``. Call only when ``capacity > 0``."""
        h2 = self._h2
        try:
            sid = h2.get_next_available_stream_id()
        except NoAvailableStreamIDError as exc:
            self.goaway = (0, "stream ids exhausted")
            self._on_change(self)
            raise TransportError("GOAWAY", "this connection used all its stream ids",
                                 retry_safe=True) from exc
        future: asyncio.Future[Response] = self._loop.create_future()
        st = StreamState(future, self._loop.time() + self._timeout, auth)
        try:
            h2.send_headers(sid, headers, end_stream=not body)
            self._streams[sid] = st
            if body:
                if len(body) <= h2.local_flow_control_window(sid) and \
                        len(body) <= h2.max_outbound_frame_size:
                    h2.send_data(sid, body, end_stream=True)
                else:
                    st.blocked = body
                    self._blocked[sid] = st
                    self._send_blocked(sid, st)
        except H2Error as exc:  # the connection is in a state h2 refuses: use another one
            self._streams.pop(sid, None)
            self._blocked.pop(sid, None)
            self.goaway = (0, f"HTTP/2 state error: {exc}")
            self._on_change(self)
            raise TransportError("ConnectionError", f"could not start the request ({exc}): "
                                 "sending it on another connection", retry_safe=True) from exc
        self._unflushed.append(st)
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)
        return future

    def close(self) -> None:
        """Close now; streams still in flight fail with ConnectionError."""
        if self._transport is not None and not self.closed:
            with contextlib.suppress(H2Error):
                self._h2.close_connection()
                self._write_now()
            self._transport.close()
        self._shutdown(TransportError("ConnectionError", "the connection was closed by Clarion"))

    # --- internals -------------------------------------------------------------------------

    def _flush(self) -> None:
        self._flush_handle = None
        self._write_now()

    def _write_now(self) -> None:
        data = self._h2.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)
            for st in self._unflushed:
                st.written = True
            self._unflushed.clear()

    def _tick(self) -> None:
        now = self._loop.time()
        expired = [sid for sid, st in self._streams.items() if st.deadline <= now]
        for sid in expired:
            st = self._streams.pop(sid)
            self._blocked.pop(sid, None)
            with contextlib.suppress(H2Error):
                self._h2.reset_stream(sid, ErrorCodes.CANCEL)
            if not st.future.done():
                st.future.set_exception(TransportError(
                    "Timeout", f"APNs did not answer within {self._timeout:g} s; the "
                    "notification may or may not have been delivered"))
        if self._ping_sent_at is not None and now - self._ping_sent_at > self._ping_timeout:
            self._abort(TransportError("ConnectionError", "APNs stopped answering PINGs"))
            return
        if self._ping_sent_at is None and now - self._last_seen >= self._ping_interval \
                and self.goaway is None:
            with contextlib.suppress(H2Error):
                self._h2.ping(os.urandom(8))
                self._ping_sent_at = now
        self._write_now()
        if expired:
            self._on_change(self)
        if not self.closed:
            self._tick_handle = self._loop.call_later(_TICK_SECONDS, self._tick)

    def _fail_ready(self, error: TransportError) -> None:
        if not self.ready.done():
            self.ready.set_exception(error)
            self.ready.exception()  # retrieved: the opener re-raises it

    def abort(self, error: TransportError) -> None:
        """Drop the TCP connection at once; streams in flight fail with ``error``."""
        self._abort(error)

    def _abort(self, error: TransportError) -> None:
        if self._transport is not None:
            self._transport.abort()
        self._shutdown(error)

    def _shutdown(self, error: TransportError) -> None:
        if self.closed:
            return
        self.closed = True
        self._fail_ready(error)
        for handle in (self._flush_handle, self._tick_handle):
            if handle is not None:
                handle.cancel()
        streams, self._streams = self._streams, {}
        self._blocked.clear()
        for st in streams.values():
            if st.future.done():
                continue
            if st.written:
                st.future.set_exception(TransportError(error.reason, error.detail,
                                                       credential=error.credential))
            else:  # never left this process: safe to send again
                st.future.set_exception(TransportError(error.reason, error.detail,
                                                       retry_safe=True,
                                                       credential=error.credential))
        self._on_change(self)

