"""``clarion emulator fcm``: run the FCM emulator until interrupted.

Point Clarion at it with ``CLARION_FCM_URL`` (printed at start) and give the app a service
account whose ``token_uri`` is the emulator's ``/token``: either register existing keys with
``--service-account FILE`` (their token_uri must already point here), or let the emulator make
one with ``--make-service-account FILE --project ID`` and upload that file as the app's
service account.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from clarion.emulators.fcm.server import FcmEmulator


def _write_secret(path: Path, info: dict[str, Any]) -> None:
    path.write_text(json.dumps(info, indent=2), encoding="utf-8")
    path.chmod(0o600)


async def _serve(emulator: FcmEmulator, accounts: list[dict[str, Any]], make: Path | None,
                 project: str) -> None:
    await emulator.start()
    try:
        for info in accounts:
            emulator.register_service_account(info)
        if make is not None:
            _write_secret(make, emulator.new_service_account(project))
            typer.echo(f"service account for project {project!r} written to {make}")
        typer.echo(f"FCM emulator listening on {emulator.url} (CLARION_FCM_URL={emulator.url}); "
                   f"token endpoint {emulator.token_uri}")
        await asyncio.Event().wait()
    finally:
        await emulator.stop()


def command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0 = any free port).")] = 8082,
    log: Annotated[Path | None, typer.Option(help="Append one JSON line per request.")] = None,
    tls: Annotated[bool, typer.Option(help="Serve HTTPS with a throw-away CA.")] = False,
    ca_out: Annotated[Path | None, typer.Option(
        help="With --tls: where to write the CA certificate (give it to CLARION_CA_FILE).")
    ] = None,
    service_account: Annotated[list[Path] | None, typer.Option(
        "--service-account", help="Trust this service account JSON (repeatable).")] = None,
    make_service_account: Annotated[Path | None, typer.Option(
        help="Write a new service account JSON whose token_uri points here.")] = None,
    project: Annotated[str, typer.Option(
        help="Project id of --make-service-account.")] = "clarion-emulator",
    dead: Annotated[list[str] | None, typer.Option(
        help="A token to answer UNREGISTERED (repeatable; 'dead*' always is).")] = None,
    rate_429: Annotated[float, typer.Option(help="Share of sends answered 429.")] = 0.0,
    rate_503: Annotated[float, typer.Option(help="Share of sends answered 503.")] = 0.0,
    rate_500: Annotated[float, typer.Option(help="Share of sends answered 500.")] = 0.0,
    retry_after: Annotated[str, typer.Option(help="Retry-After sent with 429/503/500.")] = "1",
    seed: Annotated[int, typer.Option(help="Seed of the random faults.")] = 0,
    latency_ms: Annotated[float, typer.Option(help="Delay before each answer.")] = 0.0,
    drop_every: Annotated[int, typer.Option(
        help="Abort the connection of every Nth send without answering (0 = never).")] = 0,
    token_lifetime: Annotated[float, typer.Option(
        help="Seconds an issued access token lasts.")] = 3600.0,
) -> None:
    """Run a local FCM HTTP v1 service with its OAuth token endpoint."""
    from clarion.emulators.fcm.server import FcmEmulator
    from clarion.emulators.tls import make_pki

    context = None
    if tls:
        with tempfile.TemporaryDirectory(prefix="clarion-fcm-pki-") as tmp:
            pki = make_pki(Path(tmp))
            context = pki.server_context()  # reads the key now; the files can go
            if ca_out is not None:
                ca_out.write_bytes(pki.ca_file.read_bytes())
                typer.echo(f"CA certificate written to {ca_out} (set CLARION_CA_FILE to it)")
    emulator = FcmEmulator(host=host, port=port, ssl_context=context, log_path=log, seed=seed,
                           rate_429=rate_429, rate_503=rate_503, rate_500=rate_500,
                           retry_after=retry_after, latency_ms=latency_ms,
                           drop_every=drop_every, token_lifetime_seconds=token_lifetime,
                           dead_tokens=dead or ())
    with contextlib.suppress(KeyboardInterrupt):
        accounts = [json.loads(p.read_text(encoding="utf-8")) for p in service_account or []]
        asyncio.run(_serve(emulator, accounts, make_service_account, project))
