"""A fixed-size latency histogram: buckets 2 % wide from 1 µs up, percentiles within 2 %.

Fixed memory whatever the number of samples, so that timing a million requests in the process
under test does not change its RSS (a list of a million floats would add ~32 MB).
"""

from __future__ import annotations

import math
from typing import Any

_RATIO = 1.02
_LOG = math.log(_RATIO)
_BUCKETS = 1400  # 1 µs × 1.02^1400 ≈ 10^12 µs: everything fits


class LogHistogram:
    __slots__ = ("count", "counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * _BUCKETS
        self.count = 0
        self.total = 0.0

    def add(self, seconds: float) -> None:
        us = seconds * 1e6
        i = int(math.log(us) / _LOG) if us > 1.0 else 0
        self.counts[i if i < _BUCKETS else _BUCKETS - 1] += 1
        self.count += 1
        self.total += seconds

    def merge(self, other: LogHistogram) -> None:
        self.count += other.count
        self.total += other.total
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]

    def percentile_ms(self, q: float) -> float | None:
        if not self.count:
            return None
        want = q * self.count
        seen = 0
        for i, n in enumerate(self.counts):
            seen += n
            if n and seen >= want:
                return _RATIO ** (i + 0.5) / 1000  # bucket middle, µs → ms
        return None

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "total_s": self.total,
                "buckets": {str(i): n for i, n in enumerate(self.counts) if n}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LogHistogram:
        h = cls()
        h.count = int(data.get("count", 0))
        h.total = float(data.get("total_s", 0.0))
        for i, n in data.get("buckets", {}).items():
            h.counts[int(i)] = int(n)
        return h

    def summary(self) -> dict[str, float | int | None]:
        return {"count": self.count, "p50_ms": _r(self.percentile_ms(0.50)),
                "p99_ms": _r(self.percentile_ms(0.99)),
                "mean_ms": _r(self.total / self.count * 1000 if self.count else None)}


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 2)
