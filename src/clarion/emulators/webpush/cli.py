"""``clarion emulator webpush``: the Web Push emulator as a command (the lead registers
``command`` under ``clarion emulator``)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from clarion.emulators.webpush.server import WebPushEmulator


def command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8093,
    log: Annotated[Path | None, typer.Option(
        help="Append one JSON line per push request: what arrived (decrypted) and the answer."
    )] = None,
    tls: Annotated[bool, typer.Option(
        help="Serve HTTPS with a throw-away CA (trust it with CLARION_CA_FILE).")] = False,
    ca_out: Annotated[Path | None, typer.Option(
        help="With --tls: where to write the CA certificate.")] = None,
    rate_429: Annotated[float, typer.Option(
        "--rate-429", min=0.0, max=1.0, help="Share of pushes answered 429 (seeded).")] = 0.0,
    rate_503: Annotated[float, typer.Option(
        "--rate-503", min=0.0, max=1.0, help="Share of pushes answered 503 (seeded).")] = 0.0,
    retry_after: Annotated[int, typer.Option(
        min=0, help="Retry-After seconds sent with 429/503.")] = 1,
    latency_ms: Annotated[float, typer.Option(
        min=0.0, help="Delay before answering each push, in milliseconds.")] = 0.0,
    drop_every: Annotated[int, typer.Option(
        min=0, help="Drop the connection without an answer on every Nth push (0: never).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the 429/503 draws.")] = 0,
) -> None:
    """Run a local Web Push service (RFC 8030/8291/8292) that also plays the browsers.

    Subscribe like a browser: POST /_emulator/subscribe {"applicationServerKey": "<VAPID public
    key>"} returns {"endpoint", "keys"}; register that with Clarion. Pushes to the endpoint are
    checked (TTL, aes128gcm, VAPID), decrypted and listed at GET /_emulator/received.
    """
    from clarion.emulators.tls import make_pki
    from clarion.emulators.webpush.server import WebPushEmulator

    ssl_context = None
    if tls:
        pki_dir = Path(tempfile.mkdtemp(prefix="clarion-webpush-pki-"))
        pki = make_pki(pki_dir)
        ssl_context = pki.server_context()
        ca_file = pki.ca_file
        if ca_out is not None:
            ca_out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(pki.ca_file, ca_out)
            ca_file = ca_out
        typer.echo(f"CA certificate: {ca_file} (set CLARION_CA_FILE={ca_file})")
    emulator = WebPushEmulator(host=host, port=port, ssl_context=ssl_context, rate_429=rate_429,
                               rate_503=rate_503, retry_after=retry_after,
                               latency_ms=latency_ms, drop_every=drop_every, seed=seed,
                               log_path=log)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(emulator))


async def _serve(emulator: WebPushEmulator) -> None:
    await emulator.start()
    typer.echo(f"Web Push emulator listening on {emulator.origin} — subscribe with POST "
               f"{emulator.origin}/_emulator/subscribe; messages at GET "
               f"{emulator.origin}/_emulator/received. Clarion sends to it with "
               "CLARION_WEBPUSH_ALLOW_PRIVATE=1 (it is a private address). Ctrl-C stops it.")
    try:
        await asyncio.Event().wait()
    finally:
        await emulator.stop()
