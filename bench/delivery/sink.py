"""The sink every sender in the delivery benchmark talks to: a private nginx on 127.0.0.1.

One nginx (``worker_processes 1``, pinned to core 0) with HTTP/2 + TLS answers, on one port:

- ``POST /3/device/<token>`` (APNs): ``200`` with no body and ``apns-id`` echoed, as Apple
  answers (aioapns hangs when ``apns-id`` is not echoed);
- ``POST /v1/projects/<p>/messages:send`` (FCM HTTP v1): ``200 {"name": ...}``;
- ``POST /token`` (the service account's ``token_uri``): an OAuth2 access token.

HTTP/1.1 is offered too (ALPN picks), for the aiohttp-based FCM senders. Every request is
logged as ``$msec $request_time $status $server_protocol $request_uri`` so each phase's slice
of the log gives the sink's own view: requests, first/last request time and the sink's
per-request time. The server runs from its own prefix under the bench's work directory (config,
pid, logs, temp paths) and is stopped by its pid at the end. Only 127.0.0.1 is bound.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.delivery.procs import HOST, free_port, pinned, wait_port

APNS_ID_HEADER = "apns-id"
TOKEN_BODY = '{"access_token":"bench-token","expires_in":3600,"token_type":"Bearer"}'
FCM_BODY = '{"name":"projects/bench/messages/1"}'

CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; multi_accept on; }}
http {{
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    log_format bench '$msec $request_time $status $server_protocol $request_method $uri';
    access_log {dir}/access.log bench buffer=512k flush=1s;
    server_tokens off;
    keepalive_requests 10000000;
    keepalive_timeout 600s;
    server {{
        listen {host}:{port} ssl {http2};
        {http2_on}
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:bench:1m;
        http2_max_concurrent_streams 1000;
        client_max_body_size 1m;
        # APNs: HEADERS with END_STREAM, no body, apns-id echoed (Apple's 200).
        location /3/device/ {{
            add_header apns-id $http_apns_id always;
            return 200;
        }}
        location ~ ^/v1/projects/[^/]+/messages:send$ {{
            default_type application/json;
            return 200 '{fcm_body}';
        }}
        location = /token {{
            default_type application/json;
            return 200 '{token_body}';
        }}
        location / {{ return 404; }}
    }}
}}
"""


def nginx_binary(install: bool = True) -> tuple[str, bool]:
    """The nginx executable, installing Debian's package when missing (``installed`` True)."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                      else None)
    if found:
        return found, False
    if not install or shutil.which("apt-get") is None:
        raise RuntimeError("nginx is not installed: run `apt-get install -y nginx` (the sink "
                           "must be faster than every sender; a Python server is not)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "nginx"],
                   check=True, env=env, capture_output=True, timeout=600)
    # Debian starts the packaged service on port 80 when it can; ours is a private instance.
    subprocess.run(["service", "nginx", "stop"], check=False, capture_output=True, timeout=60)
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    return found, True


def _version(binary: str) -> tuple[int, int, int]:
    out = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False).stderr
    text = out.strip().rsplit("/", 1)[-1].split()[0]
    parts = [int(p) for p in text.split(".")[:3]]
    return parts[0], parts[1], parts[2]


@dataclass
class LogSlice:
    """The sink's view of one phase."""

    requests: int
    by_status: dict[str, int]
    protocols: dict[str, int]
    first_msec: float | None
    last_msec: float | None
    request_time_p50_ms: float | None
    request_time_p99_ms: float | None

    @property
    def span_s(self) -> float | None:
        if self.first_msec is None or self.last_msec is None:
            return None
        return self.last_msec - self.first_msec


class Sink:
    """A private nginx instance (see the module docstring)."""

    def __init__(self, work: Path, ca_cert: Path, cert: Path, key: Path, *,
                 core: int | None = 0) -> None:
        self.dir = work / "nginx"
        self.port = free_port()
        self.url = f"https://{HOST}:{self.port}"
        self._cert, self._key, self.ca_file = cert, key, ca_cert
        self._core = core
        self._proc: subprocess.Popen[bytes] | None = None
        self.binary, self.installed = nginx_binary()
        self.version = ".".join(map(str, _version(self.binary)))

    @property
    def log(self) -> Path:
        return self.dir / "access.log"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.dir / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        # nginx >= 1.25.1 spells HTTP/2 as its own directive; Debian 12 ships 1.22.
        modern = _version(self.binary) >= (1, 25, 1)
        conf = CONF.format(dir=self.dir, host=HOST, port=self.port, cert=self._cert,
                           key=self._key, http2="" if modern else "http2",
                           http2_on="http2 on;" if modern else "",
                           fcm_body=FCM_BODY, token_body=TOKEN_BODY)
        (self.dir / "nginx.conf").write_text(conf, encoding="utf-8")
        err = open(self.dir / "stderr.log", "wb")  # noqa: SIM115 - closed with the process
        self._proc = subprocess.Popen(
            pinned(self._core, [self.binary, "-p", str(self.dir), "-c",
                                str(self.dir / "nginx.conf")]),
            stdout=err, stderr=err, start_new_session=True)
        if not wait_port(self.port, timeout=15):
            self.stop()
            raise RuntimeError(f"nginx did not start; see {self.dir / 'stderr.log'} and "
                               f"{self.dir / 'error.log'}")

    def pids(self) -> list[int]:
        """The master and its worker (for CPU accounting)."""
        if self._proc is None:
            return []
        out = [self._proc.pid]
        children = Path(f"/proc/{self._proc.pid}/task/{self._proc.pid}/children")
        with contextlib.suppress(OSError):
            out += [int(p) for p in children.read_text().split()]
        return out

    def flush_log(self) -> None:
        """Make nginx write its buffered access log (USR1 reopens the logs, flushing them)."""
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGUSR1)
            time.sleep(0.3)

    def log_offset(self) -> int:
        self.flush_log()
        return self.log.stat().st_size if self.log.exists() else 0

    def read_slice(self, start: int, end: int | None = None) -> LogSlice:
        """Parse the log between two byte offsets (one phase)."""
        self.flush_log()
        with open(self.log, "rb") as fh:
            fh.seek(start)
            data = fh.read() if end is None else fh.read(end - start)
        n = 0
        by_status: dict[str, int] = {}
        protocols: dict[str, int] = {}
        first = last = None
        # request_time has millisecond resolution: count per ms value, no list of floats.
        times: dict[int, int] = {}
        for line in data.splitlines():
            parts = line.split(b" ", 5)
            if len(parts) < 6 or parts[5] == b"/token":
                continue
            msec = float(parts[0])
            if first is None or msec < first:
                first = msec
            if last is None or msec > last:
                last = msec
            ms = round(float(parts[1]) * 1000)
            times[ms] = times.get(ms, 0) + 1
            status = parts[2].decode()
            by_status[status] = by_status.get(status, 0) + 1
            proto = parts[3].decode()
            protocols[proto] = protocols.get(proto, 0) + 1
            n += 1
        return LogSlice(n, by_status, protocols, first, last,
                        _pct(times, n, 0.50), _pct(times, n, 0.99))

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGQUIT)  # graceful: finish, flush logs
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._proc = None


def _pct(counts: dict[int, int], n: int, q: float) -> float | None:
    if not n:
        return None
    want = q * n
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= want:
            return float(value)
    return float(max(counts))
