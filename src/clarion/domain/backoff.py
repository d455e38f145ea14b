"""Retry delays: exponential backoff with "full jitter", never earlier than a server asked.

Full jitter (Marc Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015):
``sleep = uniform(0, min(cap, base * 2 ** (attempt - 1)))``. Spreading retries over the whole
window is what keeps many workers that failed together (a provider outage, a lost database)
from coming back together; of the variants measured there it does the least total work.

Pure: the random source is injectable so tests can pin it.
"""

from __future__ import annotations

import math
import random

# 2 ** 60 seconds is far past any sane cap; stop the exponent there so huge attempt numbers
# cannot overflow a float.
_MAX_EXPONENT = 60


def backoff_seconds(
    attempt: int,
    *,
    base: float = 1.0,
    cap: float = 3600.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (the first retry is attempt 1).

    The window doubles with each attempt (``base``, ``2*base``, ``4*base`` ...) up to ``cap``;
    the delay is drawn uniformly from ``[0, window]``.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    if base < 0 or cap < 0:
        raise ValueError(f"base and cap must be >= 0, got base={base} cap={cap}")
    window = min(cap, base * 2.0 ** min(attempt - 1, _MAX_EXPONENT))
    draw = (rng or random).uniform(0.0, window)
    return min(draw, window)


def honour_retry_after(computed: float, retry_after: float | None) -> float:
    """The delay to use when a server sent ``Retry-After`` (RFC 9110 §10.2.3): never earlier.

    A missing, negative or non-finite ``retry_after`` is ignored.
    """
    if retry_after is None or not math.isfinite(retry_after) or retry_after < 0:
        return computed
    return max(computed, retry_after)
