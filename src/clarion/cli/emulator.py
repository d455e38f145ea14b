"""`clarion emulator apns|fcm|webpush`: local provider servers for demos and tests.

They verify what the real providers verify and answer with the real status codes and error
bodies; fault options inject dead tokens, 429/503 answers, latency and dropped connections.
"""

from __future__ import annotations

import typer

from clarion.emulators import apns, fcm, webpush

app = typer.Typer(help="Local APNs / FCM / Web Push servers that behave like the real ones.",
                  no_args_is_help=True)
app.command("apns", help="APNs over HTTP/2 + TLS (ALPN h2) with provider-token checks.")(
    apns.command)
app.command("fcm", help="FCM HTTP v1 with its OAuth2 token endpoint.")(fcm.command)
app.command("webpush", help="A Web Push service (RFC 8030/8291/8292) that decrypts.")(
    webpush.command)
