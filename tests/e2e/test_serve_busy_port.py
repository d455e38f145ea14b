"""A second `clarion serve` on a port that is taken stops before starting anything, with one
sentence and its fix, and the first one keeps serving (issue 13)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import CLARION, Service

pytestmark = pytest.mark.e2e


def test_a_second_serve_on_a_busy_port_fails_before_starting_anything(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    env["PYTHONWARNINGS"] = "ignore"
    first = Service(tmp_path / "first", {**env, "CLARION_VAR_DIR": str(tmp_path / "first")})
    first.home.mkdir()
    first.start()
    try:
        second_var = tmp_path / "second" / "var"
        started = time.monotonic()
        out = subprocess.run([*CLARION, "serve", "--port", str(first.port)], cwd=tmp_path,
                             env={**env, "CLARION_VAR_DIR": str(second_var)},
                             capture_output=True, timeout=60, check=False)
        elapsed = time.monotonic() - started
        lines = out.stderr.decode().strip().splitlines()
        assert out.returncode == 1, out.stderr.decode()
        assert lines == [
            f"error: cannot listen on 127.0.0.1:{first.port}: the port is already in use "
            "(another `clarion serve`, or another program, listens there)",
            "fix: Stop that process, or choose another port with --port (CLARION_PORT)."]
        assert out.stdout == b""
        # Nothing started: no banner, no database, no secret key, no worker.
        assert not second_var.exists()
        assert elapsed < 15
        assert httpx.get(f"{first.url}/healthz", timeout=5).status_code == 200
    finally:
        first.stop()
