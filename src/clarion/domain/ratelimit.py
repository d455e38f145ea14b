"""A token bucket (pure: the caller passes the time), for per-app provider rate limits."""

from __future__ import annotations


class TokenBucket:
    def __init__(self, rate_per_second: float, *, burst: float | None = None,
                 now: float = 0.0) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate_per_second
        self.capacity = burst if burst is not None else max(1.0, rate_per_second)
        self._tokens = self.capacity
        self._at = now

    def take(self, n: float, now: float) -> float:
        """Take ``n`` tokens; returns how long to wait (seconds) before sending them.

        The tokens are reserved immediately (the balance may go negative), so concurrent
        callers queue up fairly behind each other instead of all waking at once."""
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= n
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate
