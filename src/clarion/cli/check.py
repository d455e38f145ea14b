"""`clarion check-config`: what is configured, and what is wrong with it."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer
from rich.table import Table

from clarion.cli.session import console, emit_json, settings

if TYPE_CHECKING:
    from clarion.config import Settings


@dataclass
class Finding:
    setting: str
    value: str
    level: str  # ok | warn | error
    note: str


async def _database(cfg: Settings) -> Finding:
    from clarion.store.migrate import redacted, schema_revisions

    url = cfg.resolved_database_url
    shown = redacted(url)
    if cfg.is_sqlite and not (cfg.var_dir / "clarion.db").exists() and not cfg.database_url:
        return Finding("CLARION_DATABASE_URL", shown, "ok",
                       "embedded SQLite; the file is created and migrated on the first "
                       "`clarion serve` (or `clarion migrate`)")
    try:
        current, head = await schema_revisions(url)
    except Exception as exc:
        return Finding("CLARION_DATABASE_URL", shown, "error",
                       f"cannot connect: {exc}. Check the URL, that the server runs and that the "
                       "database exists.")
    if current != head:
        return Finding("CLARION_DATABASE_URL", shown, "warn",
                       f"schema at {current or 'nothing'}, code expects {head}: run "
                       "`clarion migrate` (serve does it at start unless CLARION_AUTO_MIGRATE=0).")
    mode = "embedded SQLite (one process)" if cfg.is_sqlite else "PostgreSQL (scale-out)"
    return Finding("CLARION_DATABASE_URL", shown, "ok", f"{mode}; schema up to date")


def _secret(cfg: Settings) -> Finding:
    from clarion.crypto import SecretBox

    if cfg.secret_key is not None and cfg.secret_key.get_secret_value().strip():
        keys = cfg.secret_keys()
        weak = [k for k in keys if len(k) < 32]
        SecretBox(keys)
        if weak:
            return Finding("CLARION_SECRET_KEY", "set", "warn",
                           f"{len(weak)} key(s) shorter than 32 characters: use "
                           "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`.")
        return Finding("CLARION_SECRET_KEY", "set", "ok",
                       f"{len(keys)} key(s); the first encrypts, all decrypt")
    key_file = cfg.var_dir / "secret.key"
    if key_file.exists():
        return Finding("CLARION_SECRET_KEY", f"from {key_file}", "warn",
                       "generated on the first embedded run: back the file up, or set "
                       "CLARION_SECRET_KEY explicitly for production.")
    if cfg.is_sqlite:
        return Finding("CLARION_SECRET_KEY", "not set", "warn",
                       f"one will be generated into {key_file} on first start.")
    return Finding("CLARION_SECRET_KEY", "not set", "error",
                   "PostgreSQL mode needs one key shared by every process: set it.")


def _public_url(cfg: Settings) -> Finding:
    from clarion.config import served_url

    served = served_url(cfg.host, cfg.port)
    if cfg.public_url_derived:
        return Finding("CLARION_PUBLIC_URL", f"not set: {cfg.public_url}", "warn",
                       "follows CLARION_HOST and CLARION_PORT (`clarion serve --port` too); "
                       "loopback: fine on one machine; set the URL apps and people reach.")
    parts = urlsplit(cfg.public_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Finding("CLARION_PUBLIC_URL", cfg.public_url, "error",
                       "not an absolute http(s) URL: apps could not reach Clarion.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return Finding("CLARION_PUBLIC_URL", cfg.public_url, "error",
                       "its port is not a number: apps could not reach Clarion.")
    local = {"127.0.0.1", "localhost", "::1", cfg.host}
    if parts.hostname in local and port != cfg.port:
        # Same machine, another port: nothing listens there (a proxy would have a name).
        return Finding("CLARION_PUBLIC_URL", cfg.public_url, "warn",
                       f"disagrees with the address served, {served} (CLARION_HOST, "
                       "CLARION_PORT): developer information, tracked links and @odata.context "
                       "would point at the wrong port. Unset CLARION_PUBLIC_URL to follow the "
                       "port, or make them agree.")
    if parts.hostname in ("127.0.0.1", "localhost"):
        return Finding("CLARION_PUBLIC_URL", cfg.public_url, "warn",
                       "loopback: fine on one machine; set the URL apps and people reach.")
    if parts.scheme != "https":
        return Finding("CLARION_PUBLIC_URL", cfg.public_url, "warn",
                       "plain http: API tokens would travel unencrypted; put TLS in front.")
    return Finding("CLARION_PUBLIC_URL", cfg.public_url, "ok",
                   f"Clarion itself serves {served}: the proxy in front must forward there.")


def collect(cfg: Settings) -> list[Finding]:
    findings = [asyncio.run(_database(cfg)), _secret(cfg), _public_url(cfg)]
    findings.append(Finding(
        "CLARION_WEBHOOK_ALLOW_PRIVATE", str(cfg.webhook_allow_private),
        "warn" if cfg.webhook_allow_private else "ok",
        "callbacks may target private/loopback addresses"
        if cfg.webhook_allow_private else "callbacks to private addresses are refused"))
    findings.append(Finding(
        "CLARION_WEBPUSH_ALLOW_PRIVATE", str(cfg.webpush_allow_private),
        "warn" if cfg.webpush_allow_private else "ok",
        "Web Push endpoints may target private/loopback addresses"
        if cfg.webpush_allow_private else "Web Push endpoints at private addresses are refused"))
    findings.append(Finding("CLARION_WORKER_CONCURRENCY", str(cfg.worker_concurrency), "ok", ""))
    env_file = Path(os.environ.get("CLARION_ENV_FILE", "clarion.env"))
    findings.append(Finding("settings file", str(env_file),
                            "ok", "read" if env_file.exists() else "absent (optional)"))
    return findings


def check_config(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Report what is configured and what is wrong (exit code 1 when something is wrong)."""
    cfg = settings()
    findings = collect(cfg)
    if as_json:
        emit_json([f.__dict__ for f in findings])
    else:
        table = Table("setting", "value", "", "note", title="Clarion configuration")
        colour = {"ok": "[green]ok[/green]", "warn": "[yellow]warn[/yellow]",
                  "error": "[red]error[/red]"}
        for f in findings:
            table.add_row(f.setting, f.value, colour[f.level], f.note)
        console.print(table)
    if any(f.level == "error" for f in findings):
        raise typer.Exit(1)
