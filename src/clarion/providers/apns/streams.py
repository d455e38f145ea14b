"""The stream half of an APNs connection (``ApnsConnection`` in ``client.py``, whose docstring
says what APNs needs): an answer completing its stream, a refused provider token noted, a
stream reset, a GOAWAY failing the streams above its last stream id, and request bodies held
back by flow control sent as the window opens.
"""

from __future__ import annotations

import asyncio

import orjson
from jh2.connection import ConnectionState
from jh2.errors import ErrorCodes
from jh2.events import ConnectionTerminated, StreamReset

from clarion.providers.apns.errors import known_reasons
from clarion.providers.apns.framing import CountingH2, StreamState
from clarion.providers.apns.transport import Response, TransportError


class ApnsStreams:
    """What ``ApnsConnection`` does with its streams' events (the attributes are the
    connection's, set in its ``__init__``)."""

    _streams: dict[int, StreamState]
    _blocked: dict[int, StreamState]  # streams whose body waits for flow-control window
    _h2: CountingH2
    _loop: asyncio.AbstractEventLoop
    auth_ok: bool
    goaway: tuple[int, str] | None
    rejected: tuple[bytes, str, float] | None

    def _complete(self, st: StreamState) -> None:
        status = 0
        apns_id: str | None = None
        retry_after: bytes | None = None
        for name, value in st.headers:
            if name == b":status":
                status = int(value)
            elif name == b"apns-id":
                apns_id = value.decode("ascii", "replace")
            elif name == b"retry-after":
                retry_after = value
        if status == 403:
            self._note_auth_refusal(st)
        elif status and not (status == 429 and b"TooManyProviderTokenUpdates" in st.body):
            self.auth_ok = True  # any other answer means the provider token was accepted
        if not st.future.done():
            st.future.set_result(Response(status, apns_id, retry_after, st.body))

    def _note_auth_refusal(self, st: StreamState) -> None:
        try:
            reason = orjson.loads(st.body).get("reason") if st.body else None
        except (orjson.JSONDecodeError, AttributeError):
            reason = None
        if isinstance(reason, str) and reason != "ExpiredProviderToken":
            self.rejected = (st.auth, reason, self._loop.time())

    def _on_reset(self, event: StreamReset) -> bool:
        st = self._streams.pop(event.stream_id, None)
        self._blocked.pop(event.stream_id, None)
        if st is None:
            return False  # e.g. nginx's RST_STREAM(NO_ERROR) after a complete answer
        if st.headers and any(n == b":status" for n, _ in st.headers) and \
                event.error_code == ErrorCodes.NO_ERROR:
            self._complete(st)  # answered, then reset without error: keep the answer
            return True
        refused = event.error_code == ErrorCodes.REFUSED_STREAM
        if not st.future.done():
            st.future.set_exception(TransportError(
                "StreamReset", f"APNs reset the stream ({event.error_code!r})"
                + ("; it was not processed" if refused else ""),
                retry_safe=refused))
        return True

    def _on_goaway(self, event: ConnectionTerminated) -> None:
        last = event.last_stream_id or 0
        reason = ""
        if event.additional_data:
            # APNs puts {"reason": "Shutdown"} there; only a documented reason is repeated
            # (it reaches outcomes), never other text.
            try:
                parsed = orjson.loads(event.additional_data)
                said = parsed.get("reason") if isinstance(parsed, dict) else None
                reason = said if isinstance(said, str) and said in known_reasons() else ""
            except orjson.JSONDecodeError:
                reason = ""
        self.goaway = (last, reason or getattr(event.error_code, "name", "GOAWAY"))
        for sid in [s for s in self._streams if s > last]:
            st = self._streams.pop(sid)
            self._blocked.pop(sid, None)
            if not st.future.done():
                st.future.set_exception(TransportError(
                    "GOAWAY", f"APNs is closing the connection ({self.goaway[1]}) before "
                    "processing this request", retry_safe=True))
        if self._streams:
            # python-hyper/h2#1181: h2 refuses frames after GOAWAY; RFC 9113 §6.8 lets
            # streams <= last_stream_id finish. No new stream is opened (goaway is set).
            self._h2.state_machine.state = ConnectionState.CLIENT_OPEN

    def _send_blocked(self, sid: int, st: StreamState) -> None:
        h2 = self._h2
        data = st.blocked
        while data:
            size = min(h2.local_flow_control_window(sid), h2.max_outbound_frame_size,
                       len(data))
            if size <= 0:
                break
            h2.send_data(sid, data[:size], end_stream=size == len(data))
            data = data[size:]
        st.blocked = data
        if not data:
            self._blocked.pop(sid, None)

    def _resume_blocked(self) -> None:
        for sid, st in list(self._blocked.items()):
            if sid in self._streams:
                self._send_blocked(sid, st)
            else:
                self._blocked.pop(sid, None)
