"""Open-loop latency probe: tracked registrations at a fixed rate, then status polling.

Run by ``bench/run.py`` as ``python -m clarion_bench.latency CONFIG.json OUT.json`` (pinned to
the client core). Request *i* is due at ``t0 + i / rate`` whether or not earlier requests have
been answered (open loop: a slow server does not slow the offered load down; if the client
itself falls behind, ``max_send_lag_ms`` says by how much). Each 202 carries a
``RegistrationRequestId``; a poller asks ``/devices/status/`` every ``poll_seconds`` about every
id not yet final (≤ 1,000 ids per call, CIJ's limit) and records when it first read ``Success``.

Reported per request: accept latency (due → 202 received) and *time to Success* (202 received
→ the first status response that said Success). The latter is an upper bound: the request
became Success somewhere in the poll interval before, plus the status call's own round trip.

The HTTP client is a minimal HTTP/1.1 keep-alive client on asyncio streams (``_Conn``), not
httpx: on this machine httpx's ``AsyncClient`` topped out at ~650 requests/s on one core
(~1.5 ms of CPU per request; ~190/s when thousands of requests wait for its pool), so it would
have measured itself instead of the server. The servers under test are ours (uvicorn, answers
with Content-Length), so the client needs nothing more than status line, headers and body.
Requests are handed to ``connections`` sender tasks through a queue, each owning one
connection; a request waiting for a free connection counts in its accept latency.
"""

from __future__ import annotations

import asyncio
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

STATUS_CHUNK = 1000
GIVE_UP_AFTER = 5.0  # requests still queued this long after the last one was due are dropped


class _Conn:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1 (opened on first use, and again after
    an error). Enough for our own servers: Content-Length bodies, no chunking."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._r: asyncio.StreamReader | None = None
        self._w: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: bytes = b"") -> tuple[int, bytes]:
        if self._w is None or self._r is None:
            self._r, self._w = await asyncio.open_connection("127.0.0.1", self.port)
        self._w.write(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                      b"\r\nContent-Length: %d\r\n%s\r\n%s"
                      % (path.encode(), len(body), headers, body))
        head = await self._r.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise ValueError("chunked responses are not supported by this probe")
        return status, (await self._r.readexactly(length) if length else b"")

    def close(self) -> None:
        if self._w is not None:
            self._w.close()
        self._r = self._w = None


@dataclass
class Rec:
    due: float
    accepted_at: float | None = None
    http_status: int | None = None
    request_id: str | None = None
    status: str | None = None
    reason: str | None = None
    final_at: float | None = None
    error: str | None = None
    unsent: bool = False


def percentiles(values: list[float], points: tuple[float, ...] = (50, 95, 99)) -> dict[str, Any]:
    """Nearest-rank percentiles (and max, mean) in milliseconds of ``values`` (seconds)."""
    if not values:
        return {f"p{p:g}": None for p in points} | {"max": None, "mean": None, "n": 0}
    ordered = sorted(values)
    out: dict[str, Any] = {}
    for p in points:
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        out[f"p{p:g}"] = round(ordered[rank - 1] * 1000, 1)
    out["max"] = round(ordered[-1] * 1000, 1)
    out["mean"] = round(sum(ordered) / len(ordered) * 1000, 1)
    out["n"] = len(ordered)
    return out


class Probe:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.port = int(cfg["port"])
        self.path = f"/api/v1.0/orgs/{cfg['org_id']}/pushdeviceregistration"
        self.users: list[str] = cfg["user_ids"]
        self.recs: list[Rec] = []
        self.waiting: dict[str, Rec] = {}  # accepted, not final yet
        self.in_flight = 0
        self.sending_done = False
        self.max_lag = 0.0
        self.poll_times: list[float] = []
        self.poll_errors = 0
        self.unsent = 0
        self.give_up_at = float("inf")

    def _body(self, i: int) -> bytes:
        return orjson.dumps({
            "MobileAppId": self.cfg["app_id"], "ApiToken": self.cfg["api_token"],
            "UserId": self.users[i % len(self.users)],
            "FcmDeviceToken": f"lat-{self.cfg['prefix']}-{i:08x}:" + "y" * 120,
        })

    async def _post(self, conn: _Conn, rec: Rec, body: bytes) -> None:
        loop = asyncio.get_running_loop()
        try:
            status, data = await conn.post(f"{self.path}/devices", body,
                                           b"x-ms-track-registration: true\r\n")
            rec.accepted_at = loop.time()
            rec.http_status = status
            if status == 202:
                rec.request_id = orjson.loads(data)["RegistrationRequestId"]
                self.waiting[rec.request_id] = rec
            else:
                rec.error = data[:300].decode("utf-8", "replace")
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            rec.error = f"{type(exc).__name__}: {exc}"
            conn.close()

    async def _sender(self, queue: asyncio.Queue[tuple[Rec, bytes] | None]) -> None:
        loop = asyncio.get_running_loop()
        conn = _Conn(self.port)
        try:
            while (item := await queue.get()) is not None:
                if loop.time() > self.give_up_at:
                    item[0].unsent = True  # the server fell so far behind: stop offering
                    self.unsent += 1
                else:
                    await self._post(conn, *item)
                self.in_flight -= 1
        finally:
            conn.close()

    async def send(self) -> None:
        loop = asyncio.get_running_loop()
        rate, n = float(self.cfg["rate"]), int(self.cfg["rate"] * self.cfg["seconds"])
        queue: asyncio.Queue[tuple[Rec, bytes] | None] = asyncio.Queue()
        senders = [asyncio.create_task(self._sender(queue))
                   for _ in range(int(self.cfg.get("connections", 64)))]
        t0 = loop.time() + 0.1
        self.give_up_at = t0 + float(self.cfg["seconds"]) + GIVE_UP_AFTER
        for i in range(n):
            due = t0 + i / rate
            delay = due - loop.time()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            self.max_lag = max(self.max_lag, loop.time() - due)
            rec = Rec(due)
            self.recs.append(rec)
            self.in_flight += 1
            queue.put_nowait((rec, self._body(i)))
        for _ in senders:
            queue.put_nowait(None)
        await asyncio.wait(senders, timeout=60)
        self.sending_done = True

    async def _status(self, conn: _Conn, ids: list[str]) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        body = orjson.dumps({"RegistrationRequestIds": ids, "MobileAppId": self.cfg["app_id"],
                             "ApiToken": self.cfg["api_token"]})
        try:
            status, data = await conn.post(f"{self.path}/devices/status/", body)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            self.poll_errors += 1
            conn.close()
            return
        now = loop.time()
        self.poll_times.append(now - started)
        if status != 200:
            self.poll_errors += 1
            return
        for entry in orjson.loads(data):
            if entry["Status"] == "Pending":
                continue
            rec = self.waiting.pop(entry["RegistrationRequestId"], None)
            if rec is not None:
                rec.status, rec.reason, rec.final_at = entry["Status"], entry["FailureReason"], now

    async def poll(self) -> None:
        loop = asyncio.get_running_loop()
        interval, settle = float(self.cfg["poll_seconds"]), float(self.cfg["settle_seconds"])
        conns = [_Conn(self.port) for _ in range(8)]
        settle_deadline: float | None = None
        try:
            while True:
                started = loop.time()
                ids = list(self.waiting)
                chunks = [ids[i:i + STATUS_CHUNK] for i in range(0, len(ids), STATUS_CHUNK)]
                for first in range(0, len(chunks), len(conns)):  # ≤ 8 status calls at a time
                    await asyncio.gather(*(self._status(c, chunk) for c, chunk in
                                           zip(conns, chunks[first:first + len(conns)],
                                               strict=False)))
                if self.sending_done and self.in_flight == 0:
                    if not self.waiting:
                        return
                    settle_deadline = settle_deadline or loop.time() + settle
                    if loop.time() > settle_deadline:
                        return
                await asyncio.sleep(max(0.0, interval - (loop.time() - started)))
        finally:
            for c in conns:
                c.close()

    async def run(self) -> dict[str, Any]:
        await asyncio.gather(self.send(), self.poll())
        return self.summary()

    def summary(self) -> dict[str, Any]:
        sent = [r for r in self.recs if not r.unsent]
        accepted = [r for r in sent if r.http_status == 202]
        success = [r for r in accepted if r.status == "Success"]
        failed: dict[str, int] = {}
        for r in accepted:
            if r.status == "Failed":
                failed[r.reason or "?"] = failed.get(r.reason or "?", 0) + 1
        statuses: dict[str, int] = {}
        for r in sent:
            key = str(r.http_status) if r.http_status else "error"
            statuses[key] = statuses.get(key, 0) + 1
        # 202/s over the span from the first request's due time to the last 202
        last = max((r.accepted_at or 0.0) for r in sent) if sent else 0.0
        span = last - self.recs[0].due if self.recs else 0.0
        return {
            "offered_rate": self.cfg["rate"], "seconds": self.cfg["seconds"],
            "offered": len(self.recs), "sent": len(sent), "unsent": self.unsent,
            "accepted": len(accepted), "statuses": statuses,
            "errors": sorted({r.error for r in sent if r.error})[:5],
            "achieved_rate": round(len(accepted) / span, 1) if span > 0 else 0.0,
            "max_send_lag_ms": round(self.max_lag * 1000, 1),
            "accept_ms": percentiles([r.accepted_at - r.due for r in accepted
                                      if r.accepted_at is not None]),
            "to_success_ms": percentiles([r.final_at - r.accepted_at for r in success
                                          if r.final_at and r.accepted_at]),
            "due_to_success_ms": percentiles([r.final_at - r.due for r in success
                                              if r.final_at]),
            "success": len(success),
            "never_success": len(accepted) - len(success),
            "still_pending": sum(1 for r in accepted if r.status is None),
            "failed": failed,
            "poll_ms": percentiles(self.poll_times),
            "poll_errors": self.poll_errors,
        }


def main() -> None:
    cfg = orjson.loads(Path(sys.argv[1]).read_bytes())
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        result = runner.run(Probe(cfg).run())
    Path(sys.argv[2]).write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
