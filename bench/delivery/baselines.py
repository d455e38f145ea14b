"""Plain sender loops Clarion is compared with, each run in its own process on the sender core:
``python -m bench.delivery.baselines {aioapns,aiohttp-fcm,firebase-admin} --n … --out x.json``.

They send the same notifications (same title/body, same kind of payload, random device tokens)
to the same sink, written the way a careful user of each library would write them (the best we
could get from each in good faith, per the performance notes):

- **aioapns 4.0**: token auth with the same .p8. aioapns has no setting for the host: the pool's
  protocol class is replaced by a subclass whose ``APNS_SERVER``/``APNS_PORT`` name the sink,
  and it is given an SSL context that trusts the bench CA *with ALPN h2* (aioapns does not set
  ALPN and nginx would refuse HTTP/2 without it). In-flight sends are bounded by
  ``--concurrency`` worker coroutines (never "start them all": see the notes on
  django-push-notifications' lost results). uvloop with ``--uvloop``.
- **aiohttp FCM v1**: one pooled ``ClientSession`` (``--concurrency`` connections, HTTP/1.1
  keep-alive), an OAuth2 access token fetched once with google-auth from the service account's
  ``token_uri`` (the sink), one ``messages:send`` POST per device.
- **firebase-admin** ``messaging.send_each_async``: the SDK's own async path (httpx, HTTP/2),
  500 messages per call (its maximum), ``--concurrency`` calls in flight. Its FCM URL is a class
  attribute, pointed at the sink; its token endpoint is the service account's ``token_uri``;
  httpx and requests are told to trust the bench CA through ``SSL_CERT_FILE`` /
  ``REQUESTS_CA_BUNDLE``.

Latency is timed around each request from the client side (the same way the Clarion launcher
times its requests) into the same fixed histogram. The result (sends/s, latency, CPU seconds,
peak RSS) is written as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.delivery.histogram import LogHistogram
from bench.delivery.world import BUNDLE, KEY_ID, PROJECT, TEAM_ID, fcm_token

TITLE, BODY = "Benchmark", "Your order has shipped."


def _apns_message() -> dict[str, Any]:
    return {"aps": {"alert": {"title": TITLE, "body": BODY}},
            "data": {"trackingId": str(uuid.uuid4())}}


async def _bounded(n: int, concurrency: int, one: Callable[[int], Awaitable[bool]]
                   ) -> tuple[int, int]:
    """Run ``one(i)`` for i < n with at most ``concurrency`` in flight; (ok, failed)."""
    next_i = 0
    ok = failed = 0

    async def worker() -> None:
        nonlocal next_i, ok, failed
        while next_i < n:
            i = next_i
            next_i += 1
            try:
                good = await one(i)
            except Exception:  # a library error is a failed send, counted, not hidden
                good = False
            if good:
                ok += 1
            else:
                failed += 1

    await asyncio.gather(*(worker() for _ in range(min(concurrency, n))))
    return ok, failed


# ----------------------------------------------------------------------------------- aioapns


def use_jh2() -> None:
    """Make ``import h2…`` load jh2 (the Rust-backed fork of h2 with h2's API) for aioapns:
    the modules aioapns imports, substituted before it is imported."""
    import importlib
    import sys

    for name in ("", ".config", ".connection", ".events", ".exceptions", ".settings",
                 ".errors", ".stream"):
        sys.modules["h2" + name] = importlib.import_module("jh2" + name)


async def run_aioapns(args: argparse.Namespace, hist: LogHistogram) -> dict[str, Any]:
    if args.jh2:
        use_jh2()
    from aioapns import APNs, NotificationRequest, PushType
    from aioapns.connection import APNsProductionClientProtocol

    host, port = args.url.removeprefix("https://").rsplit(":", 1)

    class SinkProtocol(APNsProductionClientProtocol):
        APNS_SERVER = host
        APNS_PORT = int(port)

    ctx = ssl.create_default_context(cafile=args.ca)
    ctx.set_alpn_protocols(["h2"])
    client = APNs(key=args.p8_text, key_id=KEY_ID, team_id=TEAM_ID, topic=BUNDLE,
                  use_sandbox=False, ssl_context=ctx, max_connections=args.connections,
                  max_connection_attempts=3)
    client.pool.protocol_class = SinkProtocol
    tokens = [os.urandom(32).hex() for _ in range(args.n)]
    clock = time.perf_counter

    async def one(i: int) -> bool:
        req = NotificationRequest(device_token=tokens[i], message=_apns_message(),
                                  push_type=PushType.ALERT, priority=10)
        t0 = clock()
        result = await client.send_notification(req)
        hist.add(clock() - t0)
        return bool(result.is_successful)

    await one(0)  # connect (and have the JWT accepted) before the clock starts
    if args.gc_tuned:  # the collector settings clarion serve applies once started
        try:
            from clarion.gc_policy import tune_for_service
        except ImportError:  # an older checkout (A/B runs)
            from clarion.cli.gc_policy import tune_for_service  # type: ignore[no-redef]

        tune_for_service(50_000)
    t0 = time.perf_counter()
    ok, failed = await _bounded(args.n, args.concurrency, one)
    secs = time.perf_counter() - t0
    client.pool.close()
    import sys

    return {"ok": ok, "failed": failed, "seconds": secs,
            "h2_module": sys.modules["h2"].__name__}  # proof of which HTTP/2 stack ran


# ------------------------------------------------------------------------------ FCM: aiohttp


def _access_token(sa: dict[str, Any]) -> str:
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    creds = service_account.Credentials.from_service_account_info(
        sa, scopes=["https://www.googleapis.com/auth/firebase.messaging"])
    creds.refresh(Request())
    return str(creds.token)


def _fcm_body(token: str) -> bytes:
    return json.dumps({"message": {
        "token": token, "data": {"title": TITLE, "body": BODY,
                                 "trackingId": str(uuid.uuid4())},
        "android": {"priority": "high"}}}).encode()


async def run_aiohttp_fcm(args: argparse.Namespace, hist: LogHistogram) -> dict[str, Any]:
    import aiohttp

    sa = args.sa_json
    access = await asyncio.to_thread(_access_token, sa)
    ctx = ssl.create_default_context(cafile=args.ca)
    connector = aiohttp.TCPConnector(limit=args.concurrency, limit_per_host=args.concurrency,
                                     ssl=ctx)
    url = f"{args.url}/v1/projects/{PROJECT}/messages:send"
    headers = {"Authorization": f"Bearer {access}",
               "Content-Type": "application/json; charset=UTF-8"}
    tokens = [fcm_token() for _ in range(args.n)]
    clock = time.perf_counter
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def one(i: int) -> bool:
            t0 = clock()
            async with session.post(url, data=_fcm_body(tokens[i]), headers=headers) as resp:
                await resp.read()
                hist.add(clock() - t0)
                return resp.status == 200

        await one(0)
        t0 = time.perf_counter()
        ok, failed = await _bounded(args.n, args.concurrency, one)
        secs = time.perf_counter() - t0
    return {"ok": ok, "failed": failed, "seconds": secs}


# ------------------------------------------------------------------------ FCM: firebase-admin


async def run_firebase_admin(args: argparse.Namespace, hist: LogHistogram) -> dict[str, Any]:
    import firebase_admin
    from firebase_admin import _http_client, credentials, messaging

    # The FCM URL is a class attribute (format()ted with the project id).
    messaging._MessagingService.FCM_URL = f"{args.url}/v1/projects/{{0}}/messages:send"
    sa = args.sa_json
    app = firebase_admin.initialize_app(credentials.Certificate(sa), name="bench")
    # Time each HTTP request of send_each_async (wrapping only; behaviour unchanged).
    original = _http_client.HttpxAsyncClient.request
    clock = time.perf_counter

    async def timed(self: Any, method: str, url: str, **kwargs: Any) -> Any:
        t0 = clock()
        try:
            return await original(self, method, url, **kwargs)
        finally:
            hist.add(clock() - t0)

    _http_client.HttpxAsyncClient.request = timed  # type: ignore[method-assign]
    tokens = [fcm_token() for _ in range(args.n)]

    def msg(token: str) -> Any:
        return messaging.Message(token=token, data={"title": TITLE, "body": BODY,
                                                    "trackingId": str(uuid.uuid4())},
                                 android=messaging.AndroidConfig(priority="high"))

    first = await messaging.send_each_async([msg(tokens[0])], app=app)
    if first.success_count != 1:
        raise RuntimeError(f"firebase-admin could not send: {first.responses[0].exception}")
    chunks = [tokens[i:i + 500] for i in range(0, args.n, 500)]

    async def one(i: int) -> bool:
        resp = await messaging.send_each_async([msg(t) for t in chunks[i]], app=app)
        counts[0] += resp.success_count
        counts[1] += resp.failure_count
        return resp.failure_count == 0

    counts = [0, 0]
    t0 = time.perf_counter()
    await _bounded(len(chunks), args.concurrency, one)
    secs = time.perf_counter() - t0
    # (no delete_app: its close() calls asyncio.run() inside the running loop; we exit next)
    return {"ok": counts[0], "failed": counts[1], "seconds": secs}


# ------------------------------------------------------- Clarion's own adapters, no database


async def run_clarion_adapter(args: argparse.Namespace, hist: LogHistogram,
                              platform: str) -> dict[str, Any]:
    """Clarion's provider adapter alone (``ApnsSender`` / ``FcmSender``) in a plain loop:
    batches of 500 as the worker hands them over, ``--concurrency`` batches in flight, no
    database. Separates the adapter's cost from the bookkeeping around it."""
    from bench.delivery import launch

    from clarion.domain.outcomes import (
        DeviceAddress,
        DeviceSend,
        Notification,
        OutcomeKind,
        Platform,
    )
    from clarion.providers.apns import ApnsSender
    from clarion.providers.base import ProviderSettings
    from clarion.providers.fcm import FcmSender

    launch._patch()  # time each request exactly as in the Clarion runs
    settings = ProviderSettings(apns_url=args.url, fcm_url=args.url, ca_file=Path(args.ca))
    sender: Any
    if platform == "ios":
        sender = ApnsSender(settings)
        creds: dict[str, Any] = {"auth": "token", "signing_key": args.p8_text,
                                 "key_id": KEY_ID, "team_id": TEAM_ID, "bundle_id": BUNDLE,
                                 "environment": "production"}
        tokens = [os.urandom(32).hex() for _ in range(args.n)]
        plat = Platform.IOS
    else:
        sender = FcmSender(settings)
        creds = {"service_account": args.sa_json}
        tokens = [fcm_token() for _ in range(args.n)]
        plat = Platform.ANDROID
    note = Notification(title=TITLE, body=BODY, tracking_id=str(uuid.uuid4()),
                        ttl_seconds=2419200)
    batches = [tokens[i:i + 500] for i in range(0, args.n, 500)]

    async def one(i: int) -> bool:
        batch = [DeviceSend(str(uuid.uuid4()), DeviceAddress(plat, t), note)
                 for t in batches[i]]
        outcomes = await sender.send(creds, batch)
        good = sum(1 for o in outcomes if o.kind is OutcomeKind.ACCEPTED)
        counts[0] += good
        counts[1] += len(outcomes) - good
        return good == len(outcomes)

    counts = [0, 0]
    warm = [DeviceSend(str(uuid.uuid4()), DeviceAddress(plat, tokens[0]), note)]
    await sender.send(creds, warm)
    t0 = time.perf_counter()
    await _bounded(len(batches), args.concurrency, one)
    secs = time.perf_counter() - t0
    await sender.aclose()
    hist.merge(launch._hist["apns" if platform == "ios" else "fcm"])
    return {"ok": counts[0], "failed": counts[1], "seconds": secs}


async def run_clarion_apns(args: argparse.Namespace, hist: LogHistogram) -> dict[str, Any]:
    return await run_clarion_adapter(args, hist, "ios")


async def run_clarion_fcm(args: argparse.Namespace, hist: LogHistogram) -> dict[str, Any]:
    return await run_clarion_adapter(args, hist, "android")


def _vm_hwm_mb() -> float | None:
    """Peak RSS of this process image (VmHWM). Not ru_maxrss: Linux carries that across
    fork + exec, so it would show the benchmark runner's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


RUNNERS = {"aioapns": run_aioapns, "clarion-apns-adapter": run_clarion_apns,
           "clarion-fcm-adapter": run_clarion_fcm, "aiohttp-fcm": run_aiohttp_fcm,
           "firebase-admin": run_firebase_admin}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=sorted(RUNNERS))
    parser.add_argument("--url", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--p8")
    parser.add_argument("--sa")
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--gc-tuned", action="store_true",
                        help="aioapns: freeze start-up objects and raise the young-GC threshold "
                        "as clarion serve does (clarion.gc_policy)")
    parser.add_argument("--jh2", action="store_true",
                        help="aioapns: jh2 (Rust-backed h2 fork) substituted for h2")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    args.p8_text = Path(args.p8).read_text() if args.p8 else ""
    args.sa_json = json.loads(Path(args.sa).read_text()) if args.sa else {}
    logging.basicConfig(level=logging.ERROR)  # libraries' per-request warnings cost time
    hist = LogHistogram()
    run: Callable[[], Any] = lambda: RUNNERS[args.kind](args, hist)  # noqa: E731
    cpu0 = os.times()
    if args.uvloop:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(run())
    else:
        result = asyncio.run(run())
    cpu1 = os.times()
    result.update({
        "kind": args.kind, "n": args.n, "concurrency": args.concurrency,
        "connections": args.connections, "uvloop": args.uvloop, "gc_tuned": args.gc_tuned,
        "jh2": args.jh2,
        "sends_per_s": result["ok"] / result["seconds"] if result["seconds"] else 0.0,
        "latency": hist.summary(),
        "cpu_s": round((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), 2),
        "peak_rss_mb": _vm_hwm_mb(),
    })
    Path(args.out).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
