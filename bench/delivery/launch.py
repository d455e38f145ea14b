"""``clarion`` with its provider requests timed: ``python -m bench.delivery.launch serve …``.

Clarion does not expose per-request provider latency, and the sink's ``$request_time`` is 0 ms
for an answer nginx makes without reading anything (it says the sink is never the bottleneck,
not what a sender waits). So this launcher runs the real CLI after wrapping, in memory only:

- ``ApnsConnection.submit``: from the moment the request's stream is opened to the moment its
  answer future resolves (what the baseline aioapns loop measures around
  ``send_notification`` once it holds a stream);
- ``FcmSender._post``: around the HTTP POST (inside Clarion's connection slot), as the
  baseline aiohttp loop measures it.

Latencies go into a fixed log-bucket histogram (2 % wide buckets), so recording 1,000,000
requests costs a few kB and does not show in the RSS figures. The histogram is written as JSON
to ``BENCH_LATENCY_OUT`` when the process exits (``clarion serve`` exits cleanly on SIGTERM).
Overhead: one ``perf_counter`` and one done-callback per request (~1 µs).
"""

from __future__ import annotations

import atexit
import json
import os
import time
from pathlib import Path
from typing import Any

from bench.delivery.histogram import LogHistogram

_hist: dict[str, LogHistogram] = {"apns": LogHistogram(), "fcm": LogHistogram()}


def _patch() -> None:
    from clarion.providers.apns.client import ApnsConnection
    from clarion.providers.fcm.client import FcmSender

    submit = ApnsConnection.submit
    apns = _hist["apns"]
    clock = time.perf_counter

    def timed_submit(self: Any, headers: Any, body: bytes, auth: bytes = b"") -> Any:
        future = submit(self, headers, body, auth)
        t0 = clock()
        future.add_done_callback(lambda _f: apns.add(clock() - t0))
        return future

    ApnsConnection.submit = timed_submit  # type: ignore[method-assign]

    post = FcmSender._post
    fcm = _hist["fcm"]

    async def timed_post(self: Any, url: Any, token: str, body: bytes) -> Any:
        t0 = clock()
        try:
            return await post(self, url, token, body)
        finally:
            fcm.add(clock() - t0)

    FcmSender._post = timed_post  # type: ignore[method-assign]


def _dump() -> None:
    target = os.environ.get("BENCH_LATENCY_OUT")
    if target:
        Path(target).write_text(json.dumps({k: h.to_json() for k, h in _hist.items()}),
                                encoding="utf-8")


if __name__ == "__main__":
    _patch()
    atexit.register(_dump)
    from clarion.cli.main import main

    main()
