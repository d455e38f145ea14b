"""Processes under test: start pinned to a core, wait until they answer, stop, measure CPU.

Only ever binds and targets 127.0.0.1. Every wait is bounded; a process that does not stop on
SIGTERM within the grace period is killed (by its own pid, never by name).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


NICE = 0  # set by run.py --nice: priority of everything we start (negative: ahead of others)


def pinned(core: int | None, argv: Sequence[str]) -> list[str]:
    """``argv`` run under ``taskset -c core`` (unpinned when core is None or taskset is absent),
    and under ``nice -n NICE`` when a priority was asked for."""
    out = list(argv)
    if core is not None and shutil.which("taskset") is not None:
        out = ["taskset", "-c", str(core), *out]
    if NICE:
        out = ["nice", "-n", str(NICE), *out]
    return out


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    _log_file: object = field(repr=False, default=None)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 40.0) -> int | None:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL. Returns the exit code."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        close = getattr(self._log_file, "close", None)
        if close is not None:
            close()
        return self.popen.returncode

    def log_problems(self) -> dict[str, Any]:
        """What the process logged as errors: counts by kind and the distinct exceptions.

        ``asgi_500`` counts "Exception in ASGI application" (uvicorn answered 500, or the
        client was already gone); ``client_disconnect`` how many tracebacks ended in
        ``ClientDisconnect`` (wrk closing its connections at the end of a run);
        ``error_records`` other ERROR/CRITICAL log records (worker failures...).
        """
        counts = {"asgi_500": 0, "client_disconnect": 0, "error_records": 0,
                  "database_locked": 0}
        exceptions: dict[str, int] = {}
        if not self.log.exists():
            return {**counts, "exceptions": exceptions}
        in_tb = False
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            if "Exception in ASGI application" in line:
                counts["asgi_500"] += 1
            elif " ERROR " in line or " CRITICAL " in line:
                counts["error_records"] += 1
            if "database is locked" in line:
                counts["database_locked"] += 1
            if line.startswith("Traceback"):
                in_tb = True
            elif in_tb and line and not line.startswith((" ", "\t")):
                # The line ending a traceback names the exception (chained ones start anew).
                if not line.startswith(("The above exception", "During handling")):
                    key = line[:200]
                    exceptions[key] = exceptions.get(key, 0) + 1
                    if "ClientDisconnect" in key:
                        counts["client_disconnect"] += 1
                in_tb = False
        top = dict(sorted(exceptions.items(), key=lambda kv: -kv[1])[:8])
        return {**counts, "exceptions": top}


def start(
    name: str, argv: Sequence[str], *, env: Mapping[str, str], core: int | None, log_dir: Path,
    cwd: Path | None = None,
) -> Proc:
    log = log_dir / f"{name}.log"
    out = log.open("wb")
    popen = subprocess.Popen(
        pinned(core, argv), env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
        cwd=cwd, start_new_session=True,
    )
    return Proc(name, popen, log, out)


def wait_http(proc: Proc, url: str, *, timeout: float = 60.0, ok: Sequence[int] = (200,)) -> None:
    """Poll ``url`` until it answers one of ``ok`` (or raise, with the log's tail)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not proc.alive():
            break
        try:
            r = httpx.get(url, timeout=2.0)
            if r.status_code in ok:
                return
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    tail = ""
    if proc.log.exists():
        tail = proc.log.read_text(encoding="utf-8", errors="replace")[-3000:]
    raise RuntimeError(f"{proc.name} did not become ready at {url} ({last}); log tail:\n{tail}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14, 15)


class CoreMeter:
    """Busy share of each CPU core between ``start()`` and ``stop()`` (from /proc/stat)."""

    def __init__(self) -> None:
        self._start: dict[str, tuple[int, int]] = {}
        self.busy_pct: dict[str, float] = {}

    @staticmethod
    def _read() -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        try:
            lines = Path("/proc/stat").read_text(encoding="ascii").splitlines()
        except OSError:
            return out
        for line in lines:
            parts = line.split()
            if parts and parts[0].startswith("cpu") and parts[0] != "cpu":
                values = [int(v) for v in parts[1:]]
                idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
                out[parts[0]] = (sum(values[:8]), idle)
        return out

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> dict[str, float]:
        end = self._read()
        for cpu, (total, idle) in end.items():
            t0, i0 = self._start.get(cpu, (0, 0))
            dt = total - t0
            self.busy_pct[cpu] = round(100.0 * (dt - (idle - i0)) / dt, 1) if dt > 0 else 0.0
        return self.busy_pct


def wait_quiet(max_wait: float, *, threshold: float = 15.0) -> dict[str, float]:
    """Wait (at most ``max_wait`` seconds) until every core was under ``threshold`` % busy for
    one second, i.e. nothing else is using the machine; returns the last measurement.

    Other people's processes on a 2-core machine change the results more than anything we
    measure, so each scenario waits for a quiet moment and records what it found."""
    deadline = time.monotonic() + max_wait
    while True:
        meter = CoreMeter()
        meter.start()
        time.sleep(1.0)
        busy = meter.stop()
        if all(v < threshold for v in busy.values()) or time.monotonic() >= deadline:
            return busy
