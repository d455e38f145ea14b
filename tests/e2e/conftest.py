"""Start Clarion as a user does (`clarion serve`) in a subprocess, on a free port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import p8_key

CLARION = [sys.executable, "-m", "clarion.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.env = env
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> Any:
        out = subprocess.run([*CLARION, *args], cwd=self.home, env=self.env, capture_output=True,
                             timeout=120, check=False)
        assert out.returncode == 0, out.stderr.decode()
        return json.loads(out.stdout) if "--json" in args else out.stdout.decode()

    def start(self, *extra: str) -> None:
        with (self.home / "serve.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [*CLARION, "serve", "--port", str(self.port), *extra], cwd=self.home,
                env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("clarion serve exited:\n" + self.log())
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("clarion serve did not become healthy:\n" + self.log())

    def kill(self) -> None:
        """SIGKILL: no chance to flush or finish anything."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None

    def log(self) -> str:
        path = self.home / "serve.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not listen on {port}")


class Emulators:
    """`clarion emulator fcm` and `clarion emulator webpush`, started as a user starts them."""

    KEY_ID, TEAM_ID, BUNDLE = "ABC123DEFG", "DEF123GHIJ", "com.contoso.app"

    def __init__(self, home: Path, env: dict[str, str], **faults: str) -> None:
        self.home = home
        self.fcm_port, self.webpush_port, self.apns_port = free_port(), free_port(), free_port()
        self.fcm_log, self.webpush_log = home / "fcm.jsonl", home / "webpush.jsonl"
        self.apns_log, self.apns_ca = home / "apns.jsonl", home / "apns-ca.pem"
        self.service_account_file = home / "service-account.json"
        self.p8 = p8_key()
        (home / "AuthKey.p8").write_text(self.p8)
        fcm_faults = [f"--{k.replace('_', '-')}={v}" for k, v in faults.items()]
        self.procs = [
            subprocess.Popen([*CLARION, "emulator", "apns", "--port", str(self.apns_port),
                              "--log", str(self.apns_log), "--ca-out", str(self.apns_ca),
                              "--key", f"{self.KEY_ID}:{self.TEAM_ID}:{home / 'AuthKey.p8'}",
                              "--topic", f"{self.KEY_ID}:{self.BUNDLE}",
                              "--token-update-window", "0", *fcm_faults], cwd=home, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
            subprocess.Popen([*CLARION, "emulator", "fcm", "--port", str(self.fcm_port),
                              "--log", str(self.fcm_log), "--make-service-account",
                              str(self.service_account_file), "--project", "contoso-push",
                              *fcm_faults], cwd=home, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
            subprocess.Popen([*CLARION, "emulator", "webpush", "--port",
                              str(self.webpush_port), "--log", str(self.webpush_log)],
                             cwd=home, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL),
        ]
        wait_port(self.apns_port, self.procs[0], "the APNs emulator")
        wait_port(self.fcm_port, self.procs[1], "the FCM emulator")
        wait_port(self.webpush_port, self.procs[2], "the Web Push emulator")
        deadline = time.monotonic() + 10
        while not self.service_account_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    @property
    def service_account(self) -> dict[str, Any]:
        info: dict[str, Any] = json.loads(self.service_account_file.read_text())
        return info

    def env(self) -> dict[str, str]:
        return {"CLARION_FCM_URL": f"http://127.0.0.1:{self.fcm_port}",
                "CLARION_APNS_URL": f"https://127.0.0.1:{self.apns_port}",
                "CLARION_CA_FILE": str(self.apns_ca)}

    def app_document(self) -> dict[str, Any]:
        """An app whose credentials the emulators know (as the real providers would)."""
        return {"name": "Contoso",
                "ios": {"auth": "token", "signing_key": self.p8, "key_id": self.KEY_ID,
                        "team_id": self.TEAM_ID, "bundle_id": self.BUNDLE,
                        "environment": "sandbox"},
                "android": {"service_account": self.service_account},
                "web": {"vapid_subject": "mailto:ops@contoso.com"}}

    def records(self, log: Path) -> list[dict[str, Any]]:
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines() if line]

    def subscribe(self, vapid_public_key: str) -> dict[str, Any]:
        r = httpx.post(f"http://127.0.0.1:{self.webpush_port}/_emulator/subscribe",
                       json={"applicationServerKey": vapid_public_key}, timeout=5)
        r.raise_for_status()
        sub: dict[str, Any] = r.json()
        return sub

    def fcm_records(self) -> list[dict[str, Any]]:
        return self.records(self.fcm_log)

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture
def emulators(tmp_path: Path) -> Iterator[Emulators]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    emu = Emulators(tmp_path, env)
    yield emu
    emu.stop()


@pytest.fixture
def service(tmp_path: Path, emulators: Emulators) -> Iterator[Service]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    env.update({
        "CLARION_VAR_DIR": str(tmp_path / "var"),
        "CLARION_WEBHOOK_ALLOW_PRIVATE": "1",
        "CLARION_WEBPUSH_ALLOW_PRIVATE": "1",  # the Web Push emulator is on 127.0.0.1
        "CLARION_JOB_POLL_SECONDS": "0.2",
        "PYTHONWARNINGS": "ignore",
        **emulators.env(),
    })
    svc = Service(tmp_path, env)
    svc.env["CLARION_PUBLIC_URL"] = svc.url
    yield svc
    svc.stop()
