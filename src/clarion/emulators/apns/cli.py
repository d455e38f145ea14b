"""``clarion emulator apns``: run the APNs emulator until interrupted.

Prints the address and the CA file to trust, e.g.::

    CLARION_APNS_URL=https://127.0.0.1:8443 CLARION_CA_FILE=/tmp/…/ca.pem

``--make-key AuthKey.p8`` plays Apple's developer portal: it writes a new signing key (or
reuses the file when it exists) and accepts its tokens, so that a machine with no Apple
account can configure an iOS app against the emulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from clarion.emulators.apns.server import ApnsEmulator

# The ids of --make-key's key unless given: the examples of docs/configuration.md.
DEFAULT_KEY_ID, DEFAULT_TEAM_ID = "ABC123DEFG", "DEF123GHIJ"


def _split(value: str, parts: int, option: str, example: str) -> list[str]:
    pieces = value.split(":", parts - 1)
    if len(pieces) != parts or not all(pieces):
        raise typer.BadParameter(f"{value!r}: expected {example}", param_hint=option)
    return pieces


def command(
    host: Annotated[str, typer.Option(help="Bind address (keep 127.0.0.1 unless you mean it).")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 = any free port).")] = 8443,
    log: Annotated[Path | None, typer.Option(
        help="Append one JSON line per request received (decoded) and its answer.")] = None,
    environment: Annotated[str, typer.Option(
        help="Play APNs' sandbox or production environment.")] = "sandbox",
    make_key: Annotated[str | None, typer.Option(
        help="Write a new APNs signing key (.p8) to [KEY_ID:TEAM_ID:]PATH, or reuse that file "
        "when it exists, and accept its tokens (KEY_ID:TEAM_ID default to "
        f"{DEFAULT_KEY_ID}:{DEFAULT_TEAM_ID}). Give the file's content, the key id and the "
        "team id to the app's ios configuration.")] = None,
    key: Annotated[list[str] | None, typer.Option(
        help="Accept provider tokens of this key: KEY_ID:TEAM_ID:PATH (the .p8 file or its "
        "public key PEM). Repeatable.")] = None,
    topic: Annotated[list[str] | None, typer.Option(
        help="Restrict a key to bundle ids: KEY_ID:BUNDLE_ID (else TopicDisallowed). "
        "Repeatable; a key without --topic may push to any bundle id.")] = None,
    pki_dir: Annotated[Path | None, typer.Option(
        help="Keep the CA, server certificate and client CA here (reused when present).")
                       ] = None,
    ca_out: Annotated[Path | None, typer.Option(
        help="Copy the CA certificate to this file (give it to CLARION_CA_FILE).")] = None,
    issue_cert: Annotated[list[str] | None, typer.Option(
        help="Write a client push certificate for BUNDLE_ID[:sandbox|production|both] as "
        "<pki-dir>/<bundle>.p12 (no password) and .pem. Repeatable.")] = None,
    dead: Annotated[list[str] | None, typer.Option(
        help="Answer 410 Unregistered for this token (tokens starting with 'dead' always "
        "are). Repeatable.")] = None,
    rate_429: Annotated[float, typer.Option(help="Share of requests answered 429.")] = 0.0,
    rate_503: Annotated[float, typer.Option(help="Share of requests answered 503.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the fault dice.")] = 0,
    latency_ms: Annotated[float, typer.Option(help="Delay before every answer.")] = 0.0,
    goaway_every: Annotated[int, typer.Option(
        help="Send GOAWAY after N requests on a connection, then close it (0 = never).")] = 0,
    drop_every: Annotated[int, typer.Option(
        help="Abort the TCP connection at the Nth request, unanswered (0 = never).")] = 0,
    max_streams: Annotated[int, typer.Option(
        help="SETTINGS_MAX_CONCURRENT_STREAMS once a JWT was accepted.")] = 1000,
    token_update_window: Annotated[float, typer.Option(
        help="Seconds within which a second new JWT for a key is refused with "
        "TooManyProviderTokenUpdates (Apple: 1200; 0 = off).")] = 1200.0,
) -> None:
    """Run an APNs emulator (HTTP/2 + TLS, Apple's checks and error answers)."""
    if environment not in ("sandbox", "production"):
        raise typer.BadParameter("use sandbox or production", param_hint="--environment")
    from clarion.emulators.apns.server import ApnsEmulator

    emu = ApnsEmulator(host=host, port=port, pki_dir=pki_dir, environment=environment,
                       max_streams=max_streams, latency_ms=latency_ms, rate_429=rate_429,
                       rate_503=rate_503, seed=seed, goaway_every=goaway_every,
                       drop_every=drop_every, token_update_window=token_update_window,
                       log=log, keep=100_000)
    topics: dict[str, list[str]] = {}
    for item in topic or []:
        key_id, bundle = _split(item, 2, "--topic", "KEY_ID:BUNDLE_ID")
        topics.setdefault(key_id, []).append(bundle)
    for item in key or []:
        key_id, team_id, path = _split(item, 3, "--key", "KEY_ID:TEAM_ID:PATH_TO_P8")
        try:
            pem = Path(path).read_bytes()
            emu.register_key(key_id=key_id, team_id=team_id, key=pem,
                             topics=topics.get(key_id, ()))
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(f"{path}: {exc}", param_hint="--key") from exc
    if make_key is not None:
        made = _make_key(make_key)
        emu.register_key(key_id=made[0], team_id=made[1], key=made[2].read_bytes(),
                         topics=topics.get(made[0], ()))
    for token in dead or []:
        emu.mark_dead(token)
    try:  # uvloop triples the emulator's throughput; it ships with uvicorn[standard]
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(_serve(emu, ca_out=ca_out, issue=issue_cert or []))


def _make_key(value: str) -> tuple[str, str, Path]:
    """``[KEY_ID:TEAM_ID:]PATH``: the key at PATH, made there first when absent."""
    from clarion.emulators.apns.keys import load_public_key, new_signing_key

    pieces = value.split(":", 2)
    if len(pieces) == 3 and all(pieces):
        key_id, team_id, raw = pieces
    elif len(pieces) == 1 and value:
        key_id, team_id, raw = DEFAULT_KEY_ID, DEFAULT_TEAM_ID, value
    else:
        raise typer.BadParameter(f"{value!r}: expected PATH or KEY_ID:TEAM_ID:PATH",
                                 param_hint="--make-key")
    path = Path(raw)
    try:
        if path.exists():
            load_public_key(path.read_bytes())  # a file that is not a key: say so now
            made = "reused"
        else:
            path.write_text(new_signing_key(), encoding="ascii")
            path.chmod(0o600)
            made = "written to"
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"{path}: {exc}", param_hint="--make-key") from exc
    typer.echo(f"APNs signing key {made} {path}: key_id {key_id}, team_id {team_id} "
               "(the app's ios signing_key, key_id and team_id)", err=True)
    return key_id, team_id, path


async def _serve(emu: ApnsEmulator, *, ca_out: Path | None, issue: list[str]) -> None:
    await emu.start()
    try:
        if ca_out is not None:
            shutil.copyfile(emu.ca_file, ca_out)
        ca = ca_out or emu.ca_file
        typer.echo(f"APNs emulator ({emu.environment}) listening on {emu.url}", err=True)
        typer.echo(f"CA certificate: {ca}", err=True)
        for item in issue:
            bundle, _, env = item.partition(":")
            issued = emu.issue_client_certificate(bundle, environment=env or "both")
            base = emu.ca_file.parent / bundle
            base.with_suffix(base.suffix + ".p12").write_bytes(issued.p12)
            pem = base.with_suffix(base.suffix + ".pem")
            pem.write_text(issued.certificate_pem + issued.private_key_pem, encoding="ascii")
            pem.chmod(0o600)
            typer.echo(f"client certificate for {bundle}: {pem} (.p12 beside it)", err=True)
        typer.echo(f"CLARION_APNS_URL={emu.url} CLARION_CA_FILE={ca}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await emu.stop()
