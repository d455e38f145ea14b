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


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    env.update({
        "CLARION_VAR_DIR": str(tmp_path / "var"),
        "CLARION_WEBHOOK_ALLOW_PRIVATE": "1",
        "CLARION_JOB_POLL_SECONDS": "0.2",
        "PYTHONWARNINGS": "ignore",
    })
    svc = Service(tmp_path, env)
    svc.env["CLARION_PUBLIC_URL"] = svc.url
    yield svc
    svc.stop()
