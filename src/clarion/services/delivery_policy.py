"""How fast deliveries go out: ``DeliveryPolicy`` (deliveries per job, attempts, rates per
platform, batches in flight per app) and ``Limiter``, which applies its rates and concurrency to
each (app, platform) in this process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from clarion.domain.outcomes import Platform
from clarion.domain.ratelimit import TokenBucket


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    batch_size: int = 500  # deliveries per delivery job
    max_attempts: int = 8
    rates: Mapping[Platform, float] = field(default_factory=lambda: {
        Platform.IOS: 10_000.0, Platform.ANDROID: 10_000.0, Platform.WEB: 2_000.0})
    concurrency_per_app: int = 8  # batches in flight per (app, platform) in one process


class Limiter:
    """Per (app, platform) token buckets and concurrency caps, in this process."""

    def __init__(self, policy: DeliveryPolicy) -> None:
        self._policy = policy
        self._buckets: dict[tuple[str, Platform], TokenBucket] = {}
        self._slots: dict[tuple[str, Platform], asyncio.Semaphore] = {}

    def slot(self, app_id: str, platform: Platform) -> asyncio.Semaphore:
        key = (app_id, platform)
        if key not in self._slots:
            self._slots[key] = asyncio.Semaphore(self._policy.concurrency_per_app)
        return self._slots[key]

    async def wait(self, app_id: str, platform: Platform, n: int) -> None:
        key = (app_id, platform)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self._policy.rates[platform],
                                                      now=time.monotonic())
        delay = bucket.take(n, time.monotonic())
        if delay > 0:
            await asyncio.sleep(delay)
