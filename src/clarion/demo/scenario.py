"""The demo's scenario: what a customer does in the first hour, as steps run in order.

Each step is ``async (World, Tracker) -> None``: it reads and extends the ``World`` (the ids
and credentials made so far) and reports its progress. Administrative steps call Clarion's
services through the container, as the CLI does; the apps' steps go through Clarion's HTTP
API, as a CIJ app backend does (device registration, its status) and as devices do
(interaction reports and tracked links, made by ``clarion.emulators.devices``). To show more
more, add a step to ``STEPS``; ``welcome_journey`` runs a small journey after the send.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from clarion.demo.stage import Stage
from clarion.domain.journeys.records import JourneyReport
from clarion.domain.push_messages import PushMessageIn
from clarion.domain.reports import Report
from clarion.domain.sends import SendCreate, SendRead
from clarion.emulators.devices import new_apns_token, new_fcm_token
from clarion.errors import ClarionError

BATCH = 100  # CIJ's device-registration batch limit
STATUS_QUERY = 1000  # ids per status query (CIJ's limit)
LINK = "https://contoso.example/welcome"  # never followed: the devices stop at the redirect


class Tracker(Protocol):
    def __call__(self, step: str, done: int, total: int | None) -> None: ...


@dataclass(frozen=True, slots=True)
class Plan:
    people: int = 1000
    web_share: float = 0.2  # people who also subscribed a browser
    dead_share: float = 0.03  # registered devices whose app is uninstalled before the send
    timeout: float = 120.0  # seconds a wait may last


@dataclass
class Device:
    platform: str  # ios | android | web
    person: str
    token: str  # as registered (Web Push: the subscription endpoint)
    body: dict[str, Any]  # the CIJ registration body


@dataclass
class World:
    stage: Stage
    plan: Plan
    rng: random.Random
    org_id: str = ""
    admin_token: str = ""
    app_id: str = ""
    api_token: str = ""
    people: list[str] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    registration: Counter[str] = field(default_factory=Counter)  # Success / Failed: <reason>
    retired: Counter[str] = field(default_factory=Counter)  # per platform
    send_id: str = ""
    send: SendRead | None = None
    report: Report | None = None
    journey_id: str = ""
    journey: JourneyReport | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def registration_url(self) -> str:
        return f"{self.stage.url}/api/v1.0/orgs/{self.org_id}/pushdeviceregistration/devices"

    @property
    def events_url(self) -> str:
        return f"{self.stage.url}/api/v1.0/orgs/{self.org_id}/pushdatareceiver/events"


class DemoFailed(ClarionError):
    code = "demo_failed"


async def create_org_and_app(world: World, track: Tracker) -> None:
    c = world.stage.container
    org = await c.orgs.create("Contoso (demo)")
    world.org_id, world.admin_token = org.id, org.admin_token
    app = await c.apps.create(world.org_id, world.stage.app_document("Contoso app"))
    world.app_id, world.api_token = app.app.id, app.api_token
    track("organization and app", 1, 1)


async def create_people(world: World, track: Tracker) -> None:
    n = world.plan.people
    # Person ids are GUIDs, as CIJ's contact ids are (seeded: a --seed replays the demo).
    rows = [{"id": str(uuid.UUID(int=world.rng.getrandbits(128), version=4)),
             "email": f"person{i}@contoso.example", "first_name": f"Person {i}"}
            for i in range(n)]
    done = 0

    def progress(handled: int) -> None:
        nonlocal done
        done += handled
        track("people", done, n)

    track("people", 0, n)
    summary = await world.stage.container.importer.import_people(
        world.org_id, rows, on_progress=progress)
    if summary.rejected:
        raise DemoFailed(f"{len(summary.rejected)} people were refused: "
                         f"{summary.rejected[0].reason}")
    world.people = [r["id"] for r in rows]


def _devices(world: World, vapid_public_key: str) -> list[Device]:
    out: list[Device] = []
    base = {"MobileAppId": world.app_id, "ApiToken": world.api_token}
    for person in world.people:
        if world.rng.random() < 0.5:
            token = new_apns_token(world.rng)
            out.append(Device("ios", person, token,
                              {**base, "UserId": person, "ApnsDeviceToken": token}))
        else:
            token = new_fcm_token(world.rng)
            out.append(Device("android", person, token,
                              {**base, "UserId": person, "FcmDeviceToken": token}))
        if world.rng.random() < world.plan.web_share:
            subscription = world.stage.webpush.subscribe(vapid_public_key)
            out.append(Device("web", person, subscription["endpoint"],
                              {**base, "UserId": person, "WebPushSubscription": subscription}))
    return out


async def register_devices(world: World, track: Tracker) -> None:
    """Every device registered as a CIJ backend does it: batches of 100, tracked, and the
    status polled until each request has its outcome (after Clarion's dry run)."""
    info = await world.stage.container.apps.developer_info(world.org_id, world.app_id)
    world.devices = _devices(world, info.web_vapid_public_key or "")
    total = len(world.devices)
    track("devices", 0, total)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        ids: list[str] = []
        for i in range(0, total, BATCH):
            batch = [d.body for d in world.devices[i:i + BATCH]]
            async with http.post(f"{world.registration_url}/batch", json=batch,
                                 headers={"x-ms-track-registration": "true"}) as r:
                if r.status != 202:
                    raise DemoFailed(f"registration answered {r.status}: {await r.text()}")
                ids += [x["RegistrationRequestId"] for x in await r.json()]
        outcomes: dict[str, str] = {}
        deadline = time.monotonic() + world.plan.timeout
        while len(outcomes) < len(ids):
            if time.monotonic() > deadline:
                raise DemoFailed(f"{len(ids) - len(outcomes)} registrations still pending "
                                 f"after {world.plan.timeout:.0f} s")
            waiting = [i for i in ids if i not in outcomes]
            for j in range(0, len(waiting), STATUS_QUERY):
                query = {"RegistrationRequestIds": waiting[j:j + STATUS_QUERY],
                         "MobileAppId": world.app_id, "ApiToken": world.api_token}
                async with http.post(f"{world.registration_url}/status/", json=query) as r:
                    for status in await r.json():
                        if status["Status"] != "Pending":
                            outcomes[status["RegistrationRequestId"]] = (
                                status["Status"] if status["Status"] == "Success"
                                else f"{status['Status']}: {status['FailureReason']}")
            track("devices", len(outcomes), total)
            if len(outcomes) < len(ids):
                await asyncio.sleep(0.2)
    world.registration = Counter(outcomes.values())
    registered = {id_: o == "Success" for id_, o in outcomes.items()}
    world.devices = [d for d, id_ in zip(world.devices, ids, strict=True) if registered[id_]]


async def uninstall_some(world: World, track: Tracker) -> None:
    """A share of the registered devices' apps are uninstalled: their tokens now answer as
    the real providers answer a dead token."""
    stage = world.stage
    dead = world.rng.sample(world.devices, round(len(world.devices) * world.plan.dead_share))
    for device in dead:
        if device.platform == "ios":
            stage.apns.mark_dead(device.token)
        elif device.platform == "android":
            stage.fcm.mark_dead(device.token)
        else:
            stage.webpush.mark_gone(device.token)
        world.retired[device.platform] += 1
    track("uninstalled apps", len(dead), len(dead))


async def send(world: World, track: Tracker) -> None:
    world.stage.devices.report_to(world.events_url)  # the apps report to this org
    command = SendCreate.model_validate({
        "app_id": world.app_id, "user_ids": world.people,
        "message": {"title": "Welcome to Contoso", "body": "Your first notification.",
                    "link": LINK}})
    created = await world.stage.container.sends.create(world.org_id, command)
    world.send_id = created.send.id
    track("send", 1, 1)


async def wait_outcomes(world: World, track: Tracker) -> None:
    deadline = time.monotonic() + world.plan.timeout
    while True:
        current = await world.stage.container.sends.get(world.org_id, world.send_id, limit=1)
        total = sum(current.counts.values())
        track("delivering", total - current.counts.get("pending", 0), total or None)
        if current.state == "done":
            world.send = current
            return
        if time.monotonic() > deadline:
            raise DemoFailed(f"send {world.send_id} still {current.state} after "
                             f"{world.plan.timeout:.0f} s")
        await asyncio.sleep(0.2)


async def _report(world: World) -> Report:
    """Clarion's report of the send, split by platform, over the hours since it was made."""
    assert world.send is not None
    return await world.stage.container.reports.report(
        world.org_id, scope="send", scope_id=world.send_id, since=world.send.created_at,
        until=None, granularity="hour", by_platform=True)


def _recorded(report: Report) -> int:
    t = report.totals
    return t.delivered.events + t.opened.events + t.clicked.events


async def wait_interactions(world: World, track: Tracker) -> None:
    """Until the apps have reported and followed links, and Clarion has recorded all of it
    (the figures shown are Clarion's; the simulators' tally only says when to stop)."""
    devices = world.stage.devices
    deadline = time.monotonic() + world.plan.timeout
    while devices.pending and time.monotonic() < deadline:
        track("device reports", devices.tally.accepted_total, None)
        await asyncio.sleep(0.2)
    await devices.settle(within=max(0.0, deadline - time.monotonic()))
    expected = devices.tally.accepted_total
    while True:
        report = await _report(world)
        track("device reports", min(_recorded(report), expected), expected)
        if _recorded(report) >= expected or time.monotonic() > deadline:
            world.report = report
            return
        await asyncio.sleep(0.25)


async def read_report(world: World, track: Tracker) -> None:
    world.report = await _report(world)
    world.send = await world.stage.container.sends.get(world.org_id, world.send_id, limit=1)
    track("report", 1, 1)


JOURNEY_WAIT = "PT10S"  # how long the welcome journey waits for an open before its reminder


def _message(world: World, name: str, title: str, body: str) -> PushMessageIn:
    return PushMessageIn.model_validate({
        "name": name, "app_id": world.app_id, "category": "commercial",
        "title": title, "body": body, "on_click": {"action": "open_url", "url": LINK},
        "placeholders": {"FirstName": {"source": "audience", "field": "first_name",
                                       "default": "there"}}})


async def welcome_journey(world: World, track: Tracker) -> None:
    """A welcome journey over everyone (a segment): a personalised push, a wait of
    ``JOURNEY_WAIT`` for its open, and a reminder to those who did not open; until everyone
    is through it."""
    c = world.stage.container
    welcome = await c.messages.create(world.org_id, _message(
        world, "Welcome", "Welcome, {{FirstName}}", "Your welcome journey starts here."))
    reminder = await c.messages.create(world.org_id, _message(
        world, "Reminder", "{{FirstName}}, one more thing", "Have a look at what is new."))
    everyone = await c.segments.create(world.org_id, {
        "name": "Everyone", "filter": "endswith(email, '@contoso.example')"})
    journey = await c.journeys.create(world.org_id, {
        "name": "Welcome", "app_id": world.app_id,
        "entry": {"type": "segment", "segment_id": everyone.id, "schedule": {"kind": "once"}},
        "steps": [
            {"id": "welcome", "type": "push", "message_id": welcome.id},
            {"id": "opened", "type": "wait_for_interaction", "step": "welcome",
             "interaction": "opened", "within": JOURNEY_WAIT, "yes": "end", "no": "reminder"},
            {"id": "reminder", "type": "push", "message_id": reminder.id}],
        "reentry": "never"})
    world.journey_id = journey.id
    await c.journeys.start(world.org_id, journey.id)
    n = len(world.people)
    deadline = time.monotonic() + world.plan.timeout + 10
    while True:
        report = await c.journeys.report(world.org_id, journey.id)
        track("welcome journey", report.people - report.inside, n)
        if report.people >= n and report.inside == 0:
            world.journey = report
            return
        if time.monotonic() > deadline:
            raise DemoFailed(f"journey {journey.id}: {report.inside} of {report.people} "
                             f"people still inside after {world.plan.timeout + 10:.0f} s")
        await asyncio.sleep(0.25)


Step = Callable[[World, Tracker], Awaitable[None]]
STEPS: tuple[Step, ...] = (create_org_and_app, create_people, register_devices, uninstall_some,
                           send, wait_outcomes, wait_interactions, read_report,
                           welcome_journey)


async def play(world: World, track: Tracker, steps: tuple[Step, ...] = STEPS) -> World:
    for step in steps:
        await step(world, track)
    return world
