"""The error tree. Services raise these; ``clarion.api.errors`` maps them to HTTP.

::

    ClarionError                 message + fix, both meant for a person
    ├── InvalidInput             400/422: the request is malformed or a value is wrong
    ├── NotFound                 404: no such thing in this organization
    ├── Conflict                 409: it exists already / the state forbids it
    ├── Unauthorized             401: missing or unknown credentials
    ├── Forbidden                403: credentials valid but not for this
    ├── ConfigurationError       the installation is misconfigured (raised at start)
    ├── RetryLater               a job hit a passing condition (the worker retries it)
    └── ServiceUnavailable       503 + Retry-After: nothing was stored, try again later
        ├── DatabaseUnavailable  the database is locked, read-only or unreachable
        └── Overloaded           the backlog of accepted work is at CLARION_MAX_BACKLOG

Every error carries ``code`` (stable, machine-readable), ``message`` (what went wrong) and
``fix`` (what to do about it). ``field`` names the offending input field when there is one.
"""

from __future__ import annotations


class ClarionError(Exception):
    code = "error"

    def __init__(self, message: str, *, fix: str = "", field: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.field = field
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        parts = [f"{self.field}: {self.message}" if self.field else self.message]
        if self.fix:
            parts.append(self.fix)
        return " ".join(parts)

    def as_dict(self) -> dict[str, str]:
        out = {"code": self.code, "message": self.message}
        if self.fix:
            out["fix"] = self.fix
        if self.field:
            out["field"] = self.field
        return out


class InvalidInput(ClarionError):
    code = "invalid_input"


class NotFound(ClarionError):
    code = "not_found"


class Conflict(ClarionError):
    code = "conflict"


class Unauthorized(ClarionError):
    code = "unauthorized"


class Forbidden(ClarionError):
    code = "forbidden"


class ConfigurationError(ClarionError):
    code = "configuration_error"


class RetryLater(ClarionError):
    """A job that hit a passing condition; the worker runs it again after ``delay_seconds``
    (or after its own jittered backoff when None). The only kind of failure that is retried
    besides a lost database connection."""

    code = "retry_later"

    def __init__(self, message: str, *, delay_seconds: float | None = None) -> None:
        super().__init__(message)
        self.delay_seconds = delay_seconds


class ServiceUnavailable(ClarionError):
    """Clarion cannot take the request now and stored nothing of it; the client should retry
    after ``retry_after_seconds`` (HTTP 503 + ``Retry-After``)."""

    code = "service_unavailable"

    def __init__(self, message: str, *, fix: str = "", retry_after_seconds: int = 5,
                 code: str | None = None) -> None:
        super().__init__(message, fix=fix, code=code)
        self.retry_after_seconds = max(1, retry_after_seconds)


class DatabaseUnavailable(ServiceUnavailable):
    """The database could not be used: locked by another writer past
    ``CLARION_DB_WRITE_TIMEOUT_SECONDS``, read-only, unreachable, out of space... ``reason``
    names the class of problem (``clarion.store.availability``); ``message`` says it in words
    safe to show a client (no path, no host)."""

    code = "database_unavailable"

    def __init__(self, message: str, *, reason: str, fix: str = "",
                 retry_after_seconds: int = 5) -> None:
        super().__init__(message, fix=fix, retry_after_seconds=retry_after_seconds)
        self.reason = reason


class Overloaded(ServiceUnavailable):
    """More accepted work waits to be processed than ``CLARION_MAX_BACKLOG`` allows."""

    code = "overloaded"
