"""Simulated devices: the apps on the emulators' devices, which do what real apps do with a
notification, and tokens that die as real ones do.

An emulator that accepts a visible notification hands it to its ``SimulatedDevices``
(``notify``): the app on that device then, each with its own probability and after a random
delay, reports *Delivered* and *Opened* through the CIJ interaction API
(``POST …/pushdatareceiver/events`` with the ``trackingId`` the notification carried and the
device's own token, as an app backend relays them) and follows the tracked link the
notification carried (a click; the redirect it answers is not followed: the link's target is
on the internet). A click comes only after an open, as a tap opens the app first.

Dead tokens answer as the real providers do: each emulator's ``mark_dead`` (Web Push:
``mark_gone``) makes a registered device's token answer APNs 410 ``Unregistered``, FCM 404
``UNREGISTERED`` or Web Push 410, as when the app was uninstalled after it registered.

Nothing here knows Clarion's code: only the CIJ payload keys (``trackingId``, ``link``) and the
interaction API, as a real app does. Reports answered 429 are retried after ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass(frozen=True, slots=True)
class AppBehaviour:
    """What the simulated apps do with a notification (probabilities in [0, 1])."""

    delivered: float = 0.95  # the app reports Delivered
    opened: float = 0.35  # the person taps it: the app reports Opened
    clicked: float = 0.5  # of the opened ones with a link: the link is followed
    delay_ms: float = 1000.0  # each report waits a random 0..delay_ms after the previous step

    def __post_init__(self) -> None:
        for name in ("delivered", "opened", "clicked"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability between 0 and 1")
        if self.delay_ms < 0:
            raise ValueError("delay_ms must not be negative")


@dataclass(frozen=True, slots=True)
class Notification:
    """A notification as the device's app sees it."""

    platform: str  # ios | android | web
    token: str  # the device's token as registered (Web Push: the subscription endpoint)
    tracking_id: str
    link: str | None


def new_apns_token(rng: random.Random | None = None) -> str:
    """A 64-hex-digit APNs token that the APNs emulator's test prefixes ("dead", "badd") do
    not catch."""
    while True:
        token = (rng.randbytes(32) if rng else os.urandom(32)).hex()
        if not token.startswith(("dead", "badd")):
            return token


def new_fcm_token(rng: random.Random | None = None) -> str:
    """An FCM registration token shaped like a real one (instance id, ':', 140+ characters)."""
    r = rng or random.SystemRandom()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    instance = "".join(r.choice(alphabet) for _ in range(22))
    return f"c{instance[1:]}:APA91b" + "".join(r.choice(alphabet) for _ in range(134))


@dataclass
class Tally:
    """What the simulated apps did: reports accepted (202) and refused, links followed."""

    accepted: Counter[str] = field(default_factory=Counter)  # delivered / opened / clicked
    refused: Counter[str] = field(default_factory=Counter)  # "<kind> <status>"

    @property
    def accepted_total(self) -> int:
        return sum(self.accepted.values())


class SimulatedDevices:
    """The apps of every device of the emulators that share this object.

    ``report_to(events_url)`` says where the apps report (the CIJ interaction endpoint of the
    organization, ``…/api/v1.0/orgs/{org}/pushdatareceiver/events``); until then
    notifications are received and nothing is reported. ``settle()`` waits until every
    scheduled report and click has been made."""

    def __init__(self, behaviour: AppBehaviour | None = None, *, seed: int | None = None,
                 concurrency: int = 32) -> None:
        self.behaviour = behaviour or AppBehaviour()
        self.tally = Tally()
        self.received: Counter[str] = Counter()  # visible notifications, per platform
        self._rng = random.Random(seed)
        self._events_url: str | None = None
        self._session: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    def report_to(self, events_url: str) -> None:
        self._events_url = events_url

    def notify(self, notification: Notification) -> None:
        """A notification reached a device (called by the emulators, on their event loop)."""
        self.received[notification.platform] += 1
        if self._events_url is None or not notification.tracking_id:
            return  # a test send carries no trackingId: nothing to report, as in CIJ
        b = self.behaviour
        plan = ["delivered"] if self._rng.random() < b.delivered else []
        if self._rng.random() < b.opened:
            plan.append("opened")
            if notification.link and self._rng.random() < b.clicked:
                plan.append("clicked")
        if plan:
            delays = [self._rng.uniform(0, b.delay_ms) / 1000 for _ in plan]
            task = asyncio.get_running_loop().create_task(self._act(notification, plan, delays))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        """Devices still about to report something."""
        return len(self._tasks)

    async def settle(self, within: float = 60.0) -> None:
        """Wait until every scheduled action is done (at most ``within`` seconds)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while self._tasks:
                    await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- the apps' side -----------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self._session

    async def _act(self, n: Notification, plan: list[str], delays: list[float]) -> None:
        for kind, delay in zip(plan, delays, strict=True):
            await asyncio.sleep(delay)
            async with self._slots:
                if kind == "clicked":
                    await self._click(n)
                else:
                    await self._report(n, kind)

    async def _report(self, n: Notification, kind: str) -> None:
        assert self._events_url is not None
        body: dict[str, Any] = {"TrackingId": n.tracking_id, "DeviceToken": n.token,
                                "PushNotificationStatus": kind.capitalize()}
        for _ in range(10):
            try:
                async with self._http().post(self._events_url, json=body) as r:
                    await r.read()
                    if r.status == 429 or r.status == 503:  # back off as the API asks
                        await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                        continue
                    if r.status == 202:
                        self.tally.accepted[kind] += 1
                    else:
                        self.tally.refused[f"{kind} {r.status}"] += 1
                    return
            except (aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(0.5)
        self.tally.refused[f"{kind} gave up"] += 1

    async def _click(self, n: Notification) -> None:
        assert n.link is not None
        try:
            # The redirect target is the send's real link (on the internet): never followed.
            async with self._http().get(n.link, allow_redirects=False) as r:
                await r.read()
                if r.status in (301, 302, 303, 307, 308):
                    self.tally.accepted["clicked"] += 1
                else:
                    self.tally.refused[f"clicked {r.status}"] += 1
        except (aiohttp.ClientError, TimeoutError):
            self.tally.refused["clicked unreachable"] += 1


def notification_from(platform: str, token: str, payload: Any) -> Notification | None:
    """The CIJ keys of a decoded payload (APNs and FCM carry them in ``data``, Web Push at
    the top level), or None for a payload without them (a dry run)."""
    if not isinstance(payload, dict):
        return None
    data = payload.get("data") if platform != "web" else payload
    if not isinstance(data, dict) or "trackingId" not in data:
        return None
    link = data.get("link")
    return Notification(platform, token, str(data.get("trackingId") or ""),
                        link if isinstance(link, str) and link else None)
