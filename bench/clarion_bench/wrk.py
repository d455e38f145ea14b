"""Running wrk (installing it with apt-get when missing) with ``bench/wrk/register.lua``."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clarion_bench.procs import HOST, pinned

LUA = Path(__file__).resolve().parents[1] / "wrk" / "register.lua"


def ensure_wrk(say: Any) -> str:
    """The wrk binary; installs the Debian package when missing (and says so)."""
    found = shutil.which("wrk")
    if found:
        return found
    if shutil.which("apt-get") is None:
        raise RuntimeError("wrk is not installed and apt-get is not available: install wrk "
                           "(https://github.com/wg/wrk) and run again.")
    say("[yellow]wrk is missing: installing it with `apt-get install -y wrk`[/yellow]")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(["apt-get", "install", "-y", "wrk"], env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        say("apt-get install failed; trying `apt-get update` first")
        subprocess.run(["apt-get", "update"], env=env, capture_output=True,
                       timeout=300, check=False)
        result = subprocess.run(["apt-get", "install", "-y", "wrk"], env=env,
                                capture_output=True, text=True, timeout=300, check=False)
    found = shutil.which("wrk")
    if result.returncode != 0 or not found:
        raise RuntimeError(f"installing wrk failed:\n{result.stdout}\n{result.stderr}")
    return found


@dataclass(frozen=True)
class Load:
    path: str  # request path
    app_id: str
    api_token: str
    users_file: Path
    batch: int  # 0: one registration per request; n: arrays of n at /devices/batch


def run_wrk(
    wrk: str, port: int, load: Load, *, seconds: float, connections: int, core: int | None,
    out_dir: Path, label: str,
) -> dict[str, Any]:
    """One wrk run; returns the summary the Lua ``done()`` wrote (plus rates)."""
    out = out_dir / f"wrk-{label}.json"
    env = {
        **os.environ,
        "BENCH_PATH": load.path, "BENCH_APP": load.app_id, "BENCH_API_TOKEN": load.api_token,
        "BENCH_USERS": str(load.users_file), "BENCH_BATCH": str(load.batch),
        "BENCH_PREFIX": f"{label}{secrets.token_hex(4)}", "BENCH_OUT": str(out),
    }
    argv = pinned(core, [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                         "--timeout", "10s", "-s", str(LUA), f"http://{HOST}:{port}"])
    proc = subprocess.run(argv, env=env, capture_output=True, text=True,
                          timeout=seconds + 60, check=False)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    summary: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    secs = summary["duration_us"] / 1e6
    statuses = {int(k): v for k, v in summary.get("statuses", {}).items()}
    accepted = statuses.get(202, 0)
    summary["statuses"] = statuses
    summary["accepted"] = accepted
    summary["accepted_items"] = accepted * summary["items_per_request"]
    summary["requests_per_s"] = round(summary["requests"] / secs, 1) if secs else 0.0
    summary["accepted_per_s"] = round(accepted / secs, 1) if secs else 0.0
    summary["items_per_s"] = round(summary["accepted_items"] / secs, 1) if secs else 0.0
    summary["non_202"] = sum(n for code, n in statuses.items() if code != 202)
    summary["socket_errors"] = sum(v for k, v in summary["errors"].items() if k != "status")
    return summary
