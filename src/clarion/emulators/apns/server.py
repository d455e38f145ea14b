"""The APNs emulator: an HTTP/2 server over TLS (ALPN ``h2``) answering like Apple.

``ApnsEmulator`` is the importable API (tests, demos); ``clarion emulator apns`` runs it.
Every request is verified by ``verifier.Verifier`` (see there for the checks) and recorded,
decoded, in ``received`` and in the ``log`` JSON-lines file.

HTTP/2 behaviour (RFC 9113), like Apple's:
- SETTINGS_MAX_CONCURRENT_STREAMS is 1 on a token-auth connection until a valid JWT has been
  seen, then ``max_streams`` (default 1000); certificate connections get ``max_streams`` at
  once. Once the client acknowledged the limit, streams over it are reset with REFUSED_STREAM
  (RFC 9113 §5.1.2) and recorded in ``violations``.
- Answers: HEADERS ``:status`` + ``apns-id`` (echoed, or a new UUID), and for errors a DATA
  frame ``{"reason": ...}`` (+ ``timestamp`` for 410).

Faults: ``latency_ms`` (every answer delayed), ``goaway_every`` (after N requests on a
connection: GOAWAY NO_ERROR with last_stream_id = that request, the requests up to it are
answered, later ones ignored, then the connection closes), ``drop_every`` (after N requests on a
connection the TCP connection is aborted without answering), ``rate_429``/``rate_503``.

Admin (over HTTP/2, for curl --http2): ``GET /_emulator/received`` (records as JSON) and
``POST /_emulator/dead`` with ``{"token": "..."}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from clarion.emulators.apns.connection import EmulatorConnection
from clarion.emulators.apns.keys import ClientCA, IssuedCertificate, KeyRegistry
from clarion.emulators.apns.records import Received, Stats
from clarion.emulators.apns.verifier import Verifier
from clarion.emulators.devices import SimulatedDevices, notification_from
from clarion.emulators.serving import Emulator
from clarion.emulators.tls import TestPKI, make_pki


def load_pki(directory: Path) -> TestPKI:
    """Reuse ``ca.pem``/``server.pem``/``server.key`` in ``directory``, or make them."""
    pki = TestPKI(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    if pki.ca_file.exists() and pki.cert_file.exists() and pki.key_file.exists():
        return pki
    return make_pki(directory)


class ApnsEmulator(Emulator):
    """An APNs look-alike on ``host:port`` (port 0 = any free port)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, pki_dir: Path | None = None,
                 pki: TestPKI | None = None, environment: str = "sandbox",
                 max_streams: int = 1000, latency_ms: float = 0.0, rate_429: float = 0.0,
                 rate_503: float = 0.0, seed: int = 0, goaway_every: int = 0,
                 drop_every: int = 0, token_update_window: float = 1200.0,
                 token_max_age: float = 3600.0, log: Path | None = None,
                 keep: int | None = None, clock: Callable[[], float] = time.time,
                 devices: SimulatedDevices | None = None) -> None:
        if environment not in ("sandbox", "production"):
            raise ValueError("environment must be 'sandbox' or 'production'")
        self.host = host
        self.port = port
        self._pki_dir = pki_dir
        self.pki = pki
        self.max_streams = max_streams
        self.latency_ms = latency_ms
        self.goaway_every = goaway_every
        self.drop_every = drop_every
        self.clock = clock
        self.keys = KeyRegistry(max_age=token_max_age, update_window=token_update_window)
        self.verifier = Verifier(keys=self.keys, environment=environment, rate_429=rate_429,
                                 rate_503=rate_503, seed=seed, clock=self._now)
        if pki_dir is not None:
            pki_dir.mkdir(parents=True, exist_ok=True)
        self.client_ca = ClientCA(pki_dir)
        self._trusted: list[str] = []
        self.received: deque[Received] = deque(maxlen=keep)
        self.violations: list[str] = []
        self.stats = Stats()
        self._log_path = log
        self._log: IO[bytes] | None = None
        self._server: asyncio.Server | None = None
        self._conns: set[EmulatorConnection] = set()
        self._tmp: Any = None
        self.devices = devices  # the apps on the devices, told of each visible notification

    def _now(self) -> float:
        return self.clock()

    # --- configuration -----------------------------------------------------------------------

    @property
    def environment(self) -> str:
        return self.verifier.environment

    @environment.setter
    def environment(self, value: str) -> None:
        self.verifier.environment = value

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path:
        assert self.pki is not None, "start() first"
        return self.pki.ca_file

    def register_key(self, *, key_id: str, team_id: str,
                     key: str | bytes | ec.EllipticCurvePublicKey,
                     topics: Iterable[str] = ()) -> None:
        """Accept JWTs signed by this key (public key PEM, or the .p8 private key PEM).
        With ``topics``, the key may only push to those bundle ids (else TopicDisallowed)."""
        self.keys.register(key_id, team_id, key, tuple(topics))

    def issue_client_certificate(self, bundle_id: str, *, environment: str = "both",
                                 days: float = 365.0) -> IssuedCertificate:
        """A push certificate for ``bundle_id`` that this emulator accepts."""
        return self.client_ca.issue(bundle_id, environment=environment, days=days)

    def trust_client_certificate(self, pem: str) -> None:
        """Also accept this (self-signed) client certificate; call before ``start``."""
        self._trusted.append(pem)

    def mark_dead(self, token: str, *, timestamp_ms: int | None = None) -> None:
        """Answer 410 Unregistered for this token from now on."""
        self.verifier.dead[token.lower()] = (timestamp_ms if timestamp_ms is not None
                                             else int(self._now() * 1000))

    def register_device(self, token: str, *, environment: str | None = None,
                        topic: str | None = None) -> None:
        """Tag a token: another environment → BadDeviceToken; another topic →
        DeviceTokenNotForTopic."""
        if environment is not None:
            self.verifier.token_env[token.lower()] = environment
        if topic is not None:
            self.verifier.token_topic[token.lower()] = topic

    def set_faults(self, *, rate_429: float | None = None, rate_503: float | None = None,
                   latency_ms: float | None = None, goaway_every: int | None = None,
                   drop_every: int | None = None) -> None:
        if rate_429 is not None:
            self.verifier.rate_429 = rate_429
        if rate_503 is not None:
            self.verifier.rate_503 = rate_503
        if latency_ms is not None:
            self.latency_ms = latency_ms
        if goaway_every is not None:
            self.goaway_every = goaway_every
        if drop_every is not None:
            self.drop_every = drop_every

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> int:
        if self.pki is None:
            if self._pki_dir is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="clarion-apns-emulator-")
                self._pki_dir = Path(self._tmp.name)
            self.pki = load_pki(self._pki_dir)
        ctx = self.pki.server_context(alpn=["h2"])
        ctx.verify_mode = ssl.CERT_OPTIONAL  # token auth sends none; certificate auth does
        ctx.load_verify_locations(cadata=self.client_ca.pem)
        for pem in self._trusted:
            ctx.load_verify_locations(cadata=pem)
        if self._log_path is not None:
            self._log = self._log_path.open("ab")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: EmulatorConnection(self), self.host,
                                                self.port, ssl=ctx)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for conn in list(self._conns):
                conn.abort()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            self.pki = None

    # --- used by connections -------------------------------------------------------------------

    def record(self, rec: Received) -> None:
        if (self.devices is not None and rec.status == 200 and rec.token
                and rec.headers.get("apns-push-type", "alert") == "alert"):
            # A background push (Clarion's dry run) shows nothing: the app does not report it.
            notification = notification_from("ios", rec.token, rec.payload)
            if notification is not None:
                self.devices.notify(notification)
        self.received.append(rec)
        self.stats.requests += 1
        if self._log is not None:
            self._log.write(orjson.dumps(rec.as_dict()) + b"\n")
            self._log.flush()

    def admin(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if path == "/_emulator/received" and method == "GET":
            return 200, orjson.dumps([r.as_dict() for r in self.received])
        if path == "/_emulator/dead" and method == "POST":
            try:
                token = orjson.loads(body)["token"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                return 400, orjson.dumps({"reason": "give {\"token\": \"<hex>\"}"})
            self.mark_dead(str(token))
            return 204, b""
        return 404, orjson.dumps({"reason": "BadPath"})
