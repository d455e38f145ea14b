"""One settings tree, read from ``CLARION_*`` environment variables and an optional file.

The file is ``./clarion.env`` by default (``CLARION_ENV_FILE`` names another one). Every
setting is documented in ``docs/configuration.md``; ``clarion check-config`` reports them.
"""

from __future__ import annotations

import os
import secrets
import warnings
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from clarion.errors import ConfigurationError

DEFAULT_VAR_DIR = Path("var")


class InsecureDefaultWarning(UserWarning):
    """A setting fell back to a value that is fine for a laptop and wrong for production."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLARION_",
        env_file=os.environ.get("CLARION_ENV_FILE", "clarion.env"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    var_dir: Path = Field(DEFAULT_VAR_DIR, description="Where embedded mode keeps its files.")
    database_url: str = Field(
        "",
        description="SQLAlchemy URL. Default: a SQLite file under var_dir. "
        "Use postgresql+asyncpg://user@host/db to scale out.",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Encrypts secrets at rest. Several keys separated by commas rotate: the "
        "first encrypts, all decrypt. Generated into var_dir on the first embedded run.",
    )
    sqlite_synchronous: Literal["normal", "full"] = Field(
        "full",
        description="SQLite only. full: every commit is synced to disk before a 202, so "
        "accepted requests survive a power loss or an OS crash. normal: synced at checkpoints "
        "only; a crash of Clarion loses nothing, a power loss or an OS crash may lose the "
        "last commits (the database stays consistent). See docs/deployment.md, Durability.")
    db_write_timeout_seconds: float = Field(
        5.0, gt=0, le=120,
        description="The longest a request waits for the database (SQLite: the write lock, "
        "in this process and from other processes; PostgreSQL: a pooled connection, a connect, "
        "a row or table lock). Past it the request answers 503 with Retry-After, nothing "
        "stored; `clarion serve` refuses to start.")
    max_backlog: int = Field(
        1_000_000, ge=0,
        description="Accepted requests (registrations, cleanups, interaction reports) that may "
        "wait to be processed, counted in the database across every process. At the cap the "
        "accepting endpoints answer 503 with Retry-After until workers catch up; 0: no cap.")
    public_url: str = Field(
        "",
        description="Base URL apps and people use (developer information, tracked links, "
        "@odata.context). Default: the address served, http://<host>:<port> (127.0.0.1 for a "
        "wildcard host), following `clarion serve --host/--port`.")
    host: str = Field("127.0.0.1", description="Address `clarion serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `clarion serve` listens on.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    auto_migrate: bool = Field(True, description="Apply database migrations when serving.")
    webhook_allow_private: bool = Field(
        False, description="Allow registration callbacks to private or loopback addresses."
    )
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=60)
    webpush_allow_private: bool = Field(
        False, description="Allow Web Push subscription endpoints at private or loopback "
        "addresses (the Web Push emulator, an on-premises push service).")
    worker_concurrency: int = Field(4, ge=1, le=256)
    worker_batch_size: int = Field(100, ge=1, le=1000)
    job_lease_seconds: float = Field(60.0, gt=0)
    job_poll_seconds: float = Field(1.0, gt=0, le=60)
    job_max_attempts: int = Field(8, ge=1, le=100)
    job_done_retention_seconds: float = Field(3600.0, ge=0)
    registration_status_retention_days: int = Field(30, ge=1)
    group_commit_max_rows: int = Field(512, ge=1, le=10000)
    worker_share_under_load: float = Field(
        0.1, gt=0, le=1,
        description="In `clarion serve`, the share of time the in-process worker keeps while "
        "the API is saturated (it yields the rest to accepting requests; 1 = never yield).")
    api_token_cache_seconds: float = Field(5.0, ge=0, le=300)
    gc_threshold: int = Field(
        50_000, ge=0, le=10_000_000,
        description="Allocations between young garbage collections in serve/worker (Python's "
        "default is 700; 0 keeps Python's settings). See clarion.cli.gc_policy.")
    delivery_batch_size: int = Field(500, ge=1, le=5000,
                                     description="Deliveries per delivery job.")
    delivery_jobs_per_call: int = Field(
        4, ge=1, le=100,
        description="Delivery jobs a worker runs in one call (and claims per free slot). A "
        "worker holds at most worker_concurrency × this × delivery_batch_size deliveries, and "
        "a crash repeats at most that many notifications.")
    delivery_max_attempts: int = Field(8, ge=1, le=50,
                                       description="Attempts per device before giving up.")
    rate_apns: float = Field(10_000.0, gt=0, description="APNs sends/s per app per process.")
    rate_fcm: float = Field(
        10_000.0, gt=0,
        description="FCM sends/s per app per process (FCM's default quota is 600,000/minute "
        "per project).")
    rate_webpush: float = Field(2_000.0, gt=0, description="Web Push sends/s per app per process.")
    provider_concurrency_per_app: int = Field(
        8, ge=1, le=256, description="Delivery batches in flight per app and platform.")
    apns_url: str | None = Field(
        None, description="Replaces the APNs host (sandbox and production), e.g. an emulator.")
    fcm_url: str | None = Field(
        None, description="Replaces https://fcm.googleapis.com, e.g. an emulator.")
    ca_file: Path | None = Field(
        None, description="An extra CA bundle trusted for provider connections.")
    default_phone_region: str | None = Field(
        None, description="ISO 3166 region (e.g. FR) for phone numbers written without +country."
    )

    # -- request bodies (413 beyond; see clarion.api.body) ---------------------------------------
    max_body_bytes: int = Field(
        1_048_576, ge=1024, le=64 * 1_048_576,
        description="Largest request body read before anyone is authenticated: the CIJ "
        "device-registration endpoints, whose credentials travel in the body (larger: 413). "
        "1 MiB fits a batch of 100 registrations with the longest tokens.")
    admin_max_body_bytes: int = Field(
        8 * 1_048_576, ge=1024, le=256 * 1_048_576,
        description="Largest body of a request with an admin token (/v1, OData), read only "
        "after the token is checked (larger: 413). 8 MiB fits a send to 100,000 user_ids.")

    # -- interaction API (CIJ pushdatareceiver / pushchannel events) and tracked links --------
    events_rate_per_client: float = Field(
        200.0, ge=0,
        description="Interaction reports accepted per second per client IP address (token "
        "bucket; 0 disables the limit). Raise it when an app backend relays its devices' "
        "reports from one address.")
    events_rate_burst: float = Field(
        0.0, ge=0, description="Bucket size of that limit; 0 = twice the rate.")
    events_max_body_bytes: int = Field(
        32_768, ge=256, le=1_048_576,
        description="Largest interaction report body accepted (larger: 413); 32 KiB fits a "
        "batch of 100 reports with FCM tokens.")
    events_lookup_window_ms: float = Field(
        1.0, ge=0, le=100,
        description="How long concurrent reports' (trackingId, token) checks are collected to "
        "be answered by one query.")
    events_lookup_cache_size: int = Field(
        100_000, ge=0, le=10_000_000,
        description="Known (trackingId, token) pairs kept in memory (0 = no cache).")

    # True when public_url was not given and follows the served address (``serving``).
    _public_url_derived: bool = PrivateAttr(False)

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _derive_public_url(self) -> Settings:
        if not self.public_url:
            self.public_url = served_url(self.host, self.port)
            self._public_url_derived = True
        return self

    @property
    def public_url_derived(self) -> bool:
        """Whether ``public_url`` follows the served address (CLARION_PUBLIC_URL not set)."""
        return self._public_url_derived

    def serving(self, host: str, port: int) -> Settings:
        """These settings for a process serving on ``host:port`` (``clarion serve --host
        --port``): the public URL follows the address unless CLARION_PUBLIC_URL is set, so
        that the banner, the developer information, ``@odata.context`` and tracked links name
        the port actually served."""
        update: dict[str, object] = {"host": host, "port": port}
        if self._public_url_derived:
            update["public_url"] = served_url(host, port)
        return self.model_copy(update=update)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.var_dir / 'clarion.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    def secret_keys(self) -> list[str]:
        """The secret keys, generating one into ``var_dir`` on the first embedded run."""
        if self.secret_key is not None and self.secret_key.get_secret_value().strip():
            return [k.strip() for k in self.secret_key.get_secret_value().split(",") if k.strip()]
        key_file = self.var_dir / "secret.key"
        try:
            return self._key_from_file(key_file)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot start: the secret key {key_file.resolve()} cannot be read or created "
                f"by uid {os.getuid()} ({exc.strerror or exc}): make {self.var_dir.resolve()} "
                "and the key readable and writable by that user, or set CLARION_SECRET_KEY."
            ) from exc

    def _key_from_file(self, key_file: Path) -> list[str]:
        if key_file.exists():
            return [key_file.read_text(encoding="utf-8").strip()]
        if not self.is_sqlite:
            raise ConfigurationError(
                "CLARION_SECRET_KEY is not set, and with PostgreSQL every process must share "
                "one key",
                fix="Generate one with `python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'` and set CLARION_SECRET_KEY to it in every "
                "process's environment.",
            )
        self.var_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # owner-only when new
        key = secrets.token_urlsafe(48)
        # Created 0600: never readable by others, not even between a write and a chmod.
        fd = os.open(key_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(key + "\n")
        warnings.warn(
            f"CLARION_SECRET_KEY is not set: generated one into {key_file}. Keep that file: "
            "without it the stored provider credentials cannot be decrypted. For production set "
            "CLARION_SECRET_KEY explicitly.",
            InsecureDefaultWarning,
            stacklevel=3,
        )
        return [key]


def served_url(host: str, port: int) -> str:
    """The URL a process serving on ``host:port`` is reached at from this machine (a wildcard
    bind address is reached on the loopback address)."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - naming the wildcard, not binding it
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"  # an IPv6 literal in a URL (RFC 3986 §3.2.2)
    return f"http://{host}:{port}"


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
