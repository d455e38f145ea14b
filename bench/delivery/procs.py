"""Processes the delivery benchmark starts: pinned to a core, watched (RSS, CPU), stopped.

Only 127.0.0.1 is ever bound or targeted. Every wait is bounded. A process is stopped by its
own pid (SIGTERM, then SIGKILL after a grace period), never by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return True
        time.sleep(0.1)
    return False


def pinned(cores: int | str | None, argv: Sequence[str]) -> list[str]:
    """``argv`` under ``taskset -c cores`` (as is when None or taskset is missing)."""
    if cores is None or shutil.which("taskset") is None:
        return list(argv)
    return ["taskset", "-c", str(cores), *argv]


def rss_mb(pid: int) -> float | None:
    """Resident set size (VmRSS) in MiB, None when the process is gone."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * PAGE / 2**20
    except (OSError, IndexError, ValueError):
        return None


def cpu_seconds(pid: int) -> float | None:
    """user + system CPU seconds of one process (all its threads)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def pids_named(name: str) -> list[int]:
    """Pids whose command name is ``name`` (read-only: used to account PostgreSQL's CPU)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (entry / "comm").read_text().strip() == name:
                out.append(int(entry.name))
    return out


def cpu_of(pids: Sequence[int]) -> float:
    return sum(c for c in (cpu_seconds(p) for p in pids) if c is not None)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 30.0) -> int | None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        return self.popen.returncode

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def errors(self) -> list[str]:
        """ERROR/CRITICAL/Traceback lines the process logged."""
        with contextlib.suppress(OSError):
            return [ln for ln in self.log.read_text(errors="replace").splitlines()
                    if " ERROR " in ln or " CRITICAL " in ln or ln.startswith("Traceback")]
        return []


def start(name: str, argv: Sequence[str], *, env: Mapping[str, str], log: Path,
          cwd: Path | None = None, cores: int | str | None = None) -> Proc:
    log.parent.mkdir(parents=True, exist_ok=True)
    fh = open(log, "wb")  # noqa: SIM115 - the child owns it; closed when we drop it
    popen = subprocess.Popen(pinned(cores, argv), env=dict(env), stdout=fh,
                             stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)
    fh.close()
    return Proc(name, popen, log)


@dataclass
class RssSampler:
    """Samples the RSS of some processes every ``every`` seconds in a thread.

    ``samples`` holds (seconds since start, total MiB over the processes alive); ``marks`` lets
    the caller label moments (e.g. "10,000 deliveries done") with the RSS at that time.
    """

    pids: list[int]
    every: float = 0.5
    samples: list[tuple[float, float]] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)
    peaks: dict[int, float] = field(default_factory=dict)  # per process
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _t0: float = 0.0

    def now_mb(self) -> float:
        total = 0.0
        for pid in self.pids:
            mb = rss_mb(pid)
            if mb is not None:
                total += mb
                if mb > self.peaks.get(pid, 0.0):
                    self.peaks[pid] = mb
        return total

    def start(self) -> RssSampler:
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - self._t0, self.now_mb()))
            self._stop.wait(self.every)

    def mark(self, label: str) -> float:
        value = self.now_mb()
        self.marks[label] = value
        return value

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def peak(self) -> float:
        return max((mb for _, mb in self.samples), default=0.0)
