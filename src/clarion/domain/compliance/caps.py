"""Frequency caps: how many commercial pushes one person may get in rolling windows.

Per org and channel (``push``), three optional rolling windows, counted per person (not per
device) over the commercial pushes that actually left: ``{"push": {"per_24h": 1, "per_7d": null,
"per_30d": null}}`` (``null`` = no cap for that window). Transactional pushes neither count nor
are capped; a journey may be excluded. The counting itself is the store's (exact under several
workers); this module holds the rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from clarion.errors import InvalidInput

WINDOWS: dict[str, timedelta] = {
    "per_24h": timedelta(hours=24),
    "per_7d": timedelta(days=7),
    "per_30d": timedelta(days=30),
}
CHANNELS = ("push",)
MAX_CAP = 10_000


@dataclass(frozen=True, slots=True)
class FrequencyCap:
    per_24h: int | None = None
    per_7d: int | None = None
    per_30d: int | None = None

    @property
    def limits(self) -> dict[str, int]:
        """The windows that are capped, name → most pushes allowed in it."""
        values = {"per_24h": self.per_24h, "per_7d": self.per_7d, "per_30d": self.per_30d}
        return {name: v for name, v in values.items() if v is not None}

    @property
    def longest(self) -> timedelta | None:
        """How far back the store must count (the longest capped window)."""
        spans = [WINDOWS[name] for name in self.limits]
        return max(spans) if spans else None

    def full_window(self, sent_at: Iterable[datetime], now: datetime) -> str | None:
        """The first window (shortest first) already holding its limit of pushes sent before
        ``now``; ``None`` when one more push may leave."""
        times = [t for t in sent_at if t <= now]
        for name, limit in self.limits.items():
            since = now - WINDOWS[name]
            if sum(1 for t in times if t > since) >= limit:
                return name
        return None

    def as_document(self) -> dict[str, int | None]:
        return {"per_24h": self.per_24h, "per_7d": self.per_7d, "per_30d": self.per_30d}


def caps_from_document(doc: Mapping[str, object]) -> dict[str, FrequencyCap]:
    """``{"push": {"per_24h": 1, "per_7d": null, "per_30d": null}}`` → channel → cap."""
    out: dict[str, FrequencyCap] = {}
    for channel, value in doc.items():
        if channel not in CHANNELS:
            raise InvalidInput(f"unknown channel {channel!r}: frequency caps are set per channel, "
                               f"one of {', '.join(CHANNELS)}", field=channel,
                               code="invalid_frequency_caps")
        if not isinstance(value, Mapping):
            raise InvalidInput("expected {\"per_24h\": n, \"per_7d\": n, \"per_30d\": n} "
                               "(null for no cap)", field=channel, code="invalid_frequency_caps")
        unknown = set(value) - set(WINDOWS)
        if unknown:
            raise InvalidInput(f"unknown window {sorted(unknown)[0]!r}: use per_24h, per_7d, "
                               "per_30d", field=channel, code="invalid_frequency_caps")
        limits: dict[str, int | None] = {}
        for name in WINDOWS:
            n = value.get(name)
            if n is not None and (isinstance(n, bool) or not isinstance(n, int)
                                  or not 1 <= n <= MAX_CAP):
                raise InvalidInput(f"{n!r} is not a cap: give a whole number of pushes from 1 "
                                   f"to {MAX_CAP}, or null for no cap",
                                   field=f"{channel}.{name}", code="invalid_frequency_caps")
            limits[name] = n
        out[channel] = FrequencyCap(**limits)
    return out
