"""`clarion apps make-config`: write the app configuration document from the credential
files the providers hand out (``AuthKey_<KEY_ID>.p8``, the Firebase service account JSON).

The document (docs/configuration.md, "The app configuration document") embeds each file's
content as a JSON string or object; putting a PEM file into JSON by hand means escaping its
line breaks. This command does it, so that `clarion apps create --config app.json` can follow
with nothing edited by hand. It reads files and prints; it touches no database.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from clarion.cli.session import fail
from clarion.errors import InvalidInput


def _read(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        fail(InvalidInput(f"cannot read {path}: {reason}", field=option,
                          fix=f"Give {option} the path of the file the provider gave you."))


def make_config(
    name: Annotated[str, typer.Option(help="The app's name.")],
    ios_key: Annotated[Path | None, typer.Option(
        help="iOS: the APNs signing key file (AuthKey_<KEY_ID>.p8).")] = None,
    key_id: Annotated[str | None, typer.Option(help="iOS: the key's 10-character Key ID.")
                      ] = None,
    team_id: Annotated[str | None, typer.Option(help="iOS: the 10-character Team ID.")] = None,
    bundle_id: Annotated[str | None, typer.Option(
        help="iOS: the bundle identifier, e.g. com.contoso.app.")] = None,
    environment: Annotated[str, typer.Option(
        help="iOS: sandbox (builds run from Xcode) or production.")] = "sandbox",
    fcm_service_account: Annotated[Path | None, typer.Option(
        help="Android: the Firebase service account key JSON (not google-services.json).")
                                   ] = None,
    web_subject: Annotated[str | None, typer.Option(
        help="Web Push: the VAPID contact, mailto: or https: (a key pair is generated).")
                           ] = None,
) -> None:
    """Print an app configuration document (JSON) built from credential files: redirect it
    to a file for `clarion apps create --config`."""
    document: dict[str, Any] = {"name": name}
    ios = {"key_id": key_id, "team_id": team_id, "bundle_id": bundle_id}
    if ios_key is not None:
        missing = [f"--{k.replace('_', '-')}" for k, v in ios.items() if not v]
        if missing:
            fail(InvalidInput(f"--ios-key needs {', '.join(missing)} too", field="--ios-key",
                              fix="Give the Key ID and Team ID shown with the key (Apple "
                                  "Developer → Keys), and the app's bundle id."))
        document["ios"] = {"auth": "token", "signing_key": _read(ios_key, "--ios-key"),
                           **ios, "environment": environment}
    if fcm_service_account is not None:
        text = _read(fcm_service_account, "--fcm-service-account")
        try:
            account = json.loads(text)
        except ValueError as exc:
            fail(InvalidInput(f"{fcm_service_account} is not JSON: {exc}",
                              field="--fcm-service-account",
                              fix="Give the service account key file as downloaded from the "
                                  "Firebase console (Project settings → Service accounts)."))
        document["android"] = {"service_account": account}
    if web_subject is not None:
        document["web"] = {"vapid_subject": web_subject}
    if len(document) == 1:
        fail(InvalidInput("no platform given", field="--ios-key",
                          fix="Give --ios-key (with --key-id, --team-id, --bundle-id), "
                              "--fcm-service-account and/or --web-subject."))
    sys.stdout.write(json.dumps(document, indent=2) + "\n")
