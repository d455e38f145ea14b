"""The demo's stage: the three emulators with simulated devices, and Clarion (API + worker)
pointed at them on a temporary SQLite database, all in this process and on 127.0.0.1.

``stage(options)`` is an async context manager: on entry everything listens; on exit (normal
end, an error, Ctrl-C cancelling the task) everything is stopped and the temporary directory
removed, so nothing is left running or listening.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from clarion.bootstrap import Container
from clarion.config import Settings
from clarion.emulators.apns.keys import new_signing_key
from clarion.emulators.apns.server import ApnsEmulator
from clarion.emulators.devices import AppBehaviour, SimulatedDevices
from clarion.emulators.fcm.server import FcmEmulator
from clarion.emulators.webpush.server import WebPushEmulator
from clarion.runtime import Roles, running

HOST = "127.0.0.1"  # the demo never listens beyond this machine
KEY_ID, TEAM_ID, BUNDLE_ID, PROJECT = "DEMO123KEY", "DEMO12TEAM", "com.contoso.demo", "contoso-demo"


@dataclass(frozen=True, slots=True)
class Ports:
    clarion: int = 0  # 0: any free port
    apns: int = 0
    fcm: int = 0
    webpush: int = 0


@dataclass
class Stage:
    """What runs, and how to reach it."""

    container: Container
    url: str  # Clarion's base URL
    apns: ApnsEmulator
    fcm: FcmEmulator
    webpush: WebPushEmulator
    devices: SimulatedDevices
    signing_key: str  # the iOS app's .p8, known to the APNs emulator
    service_account: dict[str, object]  # the Android app's, known to the FCM emulator
    directory: Path  # the temporary directory (database, CA certificate); removed at exit

    @property
    def ca_file(self) -> Path:
        return self.apns.ca_file

    def cli_env(self) -> str:
        """What makes `clarion` commands work on the demo's database."""
        return f"CLARION_VAR_DIR={self.directory}"

    def env_lines(self) -> list[str]:
        """The settings that point another `clarion serve` at these emulators."""
        return [f"CLARION_APNS_URL={self.apns.url}", f"CLARION_CA_FILE={self.ca_file}",
                f"CLARION_FCM_URL={self.fcm.url}", "CLARION_WEBPUSH_ALLOW_PRIVATE=1"]

    def app_document(self, name: str) -> dict[str, object]:
        """An app with iOS, Android and Web whose credentials the emulators accept."""
        return {"name": name,
                "ios": {"auth": "token", "signing_key": self.signing_key, "key_id": KEY_ID,
                        "team_id": TEAM_ID, "bundle_id": BUNDLE_ID, "environment": "sandbox"},
                "android": {"service_account": self.service_account},
                "web": {"vapid_subject": "mailto:demo@contoso.example"}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def settings_for(directory: Path, *, port: int, apns: ApnsEmulator, fcm: FcmEmulator,
                 log_level: str) -> Settings:
    """The demo's own settings: nothing read from clarion.env (it may point elsewhere), the
    public URL on the port served, and the interaction rate limit off (every simulated
    device reports from 127.0.0.1, where real ones have an address each)."""
    # The key in the directory's secret.key, as embedded mode keeps it: `clarion` commands
    # given CLARION_VAR_DIR=<directory> then work on the demo's database.
    key_file = directory / "secret.key"
    key_file.write_text(secrets.token_urlsafe(48) + "\n", encoding="utf-8")
    key_file.chmod(0o600)
    values: dict[str, object] = {
        "_env_file": None, "var_dir": directory, "database_url": "",
        "host": HOST, "port": port, "public_url": f"http://{HOST}:{port}",
        "apns_url": apns.url, "ca_file": apns.ca_file, "fcm_url": fcm.url,
        "webpush_allow_private": True, "events_rate_per_client": 0, "job_poll_seconds": 0.2,
        "log_level": log_level, "auto_migrate": True,
    }
    return Settings(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def stage(behaviour: AppBehaviour, *, ports: Ports = Ports(), seed: int | None = None,
                log_level: str = "warning",
                announce: Callable[[str], None] = lambda _: None) -> AsyncIterator[Stage]:
    with tempfile.TemporaryDirectory(prefix="clarion-demo-") as tmp:
        directory = Path(tmp)
        devices = SimulatedDevices(behaviour, seed=seed)
        # As in the e2e tests: Apple's 20-minute window between new provider tokens of a key
        # is off, so that no restart within a demo's life can be refused.
        apns = ApnsEmulator(host=HOST, port=ports.apns, pki_dir=directory / "apns",
                            token_update_window=0, devices=devices)
        fcm = FcmEmulator(host=HOST, port=ports.fcm, devices=devices)
        webpush = WebPushEmulator(host=HOST, port=ports.webpush, devices=devices)
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(devices.close)
            for emulator in (apns, fcm, webpush):
                await emulator.start()
                stack.push_async_callback(emulator.stop)
            signing_key = new_signing_key()
            apns.register_key(key_id=KEY_ID, team_id=TEAM_ID, key=signing_key,
                              topics=[BUNDLE_ID])
            account = fcm.new_service_account(PROJECT)
            port = ports.clarion or free_port()
            settings = settings_for(directory, port=port, apns=apns, fcm=fcm,
                                    log_level=log_level)
            clarion = await stack.enter_async_context(running(
                settings, Roles(api=True, worker=True), host=HOST, port=port,
                announce=announce))
            yield Stage(container=clarion.container, url=clarion.url, apns=apns, fcm=fcm,
                        webpush=webpush, devices=devices, signing_key=signing_key,
                        service_account=account, directory=directory)
