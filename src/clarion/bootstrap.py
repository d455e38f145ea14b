"""Composition root: settings -> engine, secret box, job queue, writer, providers -> services.

Nothing here runs at import. ``build()`` wires every object once; ``Container.start()`` opens
what needs a running event loop and ``Container.close()`` releases it. The API (through
``Annotated`` dependencies, ``clarion.api.deps``), the worker's tasks and the CLI all use the
services of one container. Tests call ``build()`` with their own clock and fake senders.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from clarion.clock import Clock, SystemClock
from clarion.config import Settings
from clarion.crypto import SecretBox, derived_key
from clarion.domain.netguard import OutboundPolicy
from clarion.domain.outcomes import Platform, Sender
from clarion.domain.push_messages import PayloadPreviewer
from clarion.providers.base import Network, ProviderSettings
from clarion.providers.outbound import OutboundClient
from clarion.services.api_tokens import ApiTokenCache
from clarion.services.apps import Apps
from clarion.services.compliance import Compliance
from clarion.services.delivery import Delivery
from clarion.services.delivery_policy import DeliveryPolicy
from clarion.services.devices import Devices
from clarion.services.events import EventBus
from clarion.services.fanout import FanOut
from clarion.services.health import Health
from clarion.services.importing import Importer
from clarion.services.interactions import Interactions
from clarion.services.journey_runtime import JourneyRuntime
from clarion.services.journey_wiring import FilterFacts
from clarion.services.journeys import Journeys
from clarion.services.messages import Messages
from clarion.services.orgs import Orgs
from clarion.services.people import People
from clarion.services.recording import Recorder
from clarion.services.registration import Registration
from clarion.services.registration_processing import RegistrationProcessor
from clarion.services.reports import Reports
from clarion.services.segments import Segments
from clarion.services.sending import Sends
from clarion.services.triggers import Triggers
from clarion.services.webhooks import Callbacks
from clarion.store.backlog import Backlog
from clarion.store.db import Database
from clarion.store.group_commit import GroupCommitWriter
from clarion.store.jobs import JobQueue


@dataclass
class Container:
    settings: Settings
    clock: Clock
    db: Database
    box: SecretBox  # encrypts the apps' provider secrets at rest
    link_key: bytes  # signs tracked links (clarion.domain.links)
    policy: DeliveryPolicy
    queue: JobQueue
    writer: GroupCommitWriter
    backlog: Backlog  # accepted work waiting, against CLARION_MAX_BACKLOG
    senders: Mapping[Platform, Sender]
    # the use cases
    orgs: Orgs
    apps: Apps
    people: People
    importer: Importer
    devices: Devices
    registration: Registration
    processor: RegistrationProcessor
    callbacks: Callbacks  # registration callbacks, through the callback SSRF policy
    sends: Sends
    fanout: FanOut
    delivery: Delivery
    interactions: Interactions
    recorder: Recorder
    events: EventBus  # in-service events: subscribe here at bootstrap (services/events.py)
    reports: Reports
    health: Health
    messages: Messages  # designed push messages, preview, test send (issue 14 A)
    compliance: Compliance
    segments: Segments
    triggers: Triggers
    journeys: Journeys
    journey_runtime: JourneyRuntime  # its tasks: worker/tasks.py; its subscribers: the bus
    journey_facts: FilterFacts  # what conditions and waits read (batched for timer jobs)
    _started: bool = field(default=False, repr=False)

    async def start(self) -> None:
        if self._started:
            return
        await self.queue.start()
        self.writer.start()
        self._started = True

    async def close(self) -> None:
        if self._started:
            await self.interactions.close()
            await self.writer.close()
            await self.backlog.close()
            await self.queue.close()
            self._started = False
        for sender in {id(s): s for s in self.senders.values()}.values():
            aclose = getattr(sender, "aclose", None)
            if aclose is not None:
                await aclose()
        await self.callbacks.aclose()
        await self.db.dispose()


def provider_settings(settings: Settings, network: Network | None = None) -> ProviderSettings:
    return ProviderSettings(apns_url=settings.apns_url, fcm_url=settings.fcm_url,
                            ca_file=settings.ca_file,
                            webpush_allow_private=settings.webpush_allow_private,
                            network=network or Network())


def default_senders(settings: Settings, network: Network | None = None
                    ) -> dict[Platform, Sender]:
    """The real protocol adapters, one per platform, shared by every app."""
    from clarion.providers.apns import ApnsSender
    from clarion.providers.fcm import FcmSender
    from clarion.providers.webpush import WebPushSender

    ps = provider_settings(settings, network)
    return {Platform.IOS: ApnsSender(ps), Platform.ANDROID: FcmSender(ps),
            Platform.WEB: WebPushSender(ps)}


def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    senders: Mapping[Platform, Sender] | None = None,
    network: Network | None = None,
) -> Container:
    """``network`` replaces name resolution and the public-address rule for every outbound
    connection (tests: a fake DNS; see ``clarion.providers.base.Network``)."""
    clock = clock or SystemClock()
    db = Database(settings.resolved_database_url,
                  sqlite_synchronous=settings.sqlite_synchronous,
                  write_timeout=settings.db_write_timeout_seconds)
    keys = settings.secret_keys()
    box = SecretBox(keys)
    queue = JobQueue(
        db,
        clock,
        lease_seconds=settings.job_lease_seconds,
        max_attempts=settings.job_max_attempts,
        done_retention_seconds=settings.job_done_retention_seconds,
    )
    backlog = Backlog(db, limit=settings.max_backlog)
    writer = GroupCommitWriter(db, queue, max_rows=settings.group_commit_max_rows,
                               backlog=backlog)
    network = network or Network()
    callback_client = OutboundClient(
        OutboundPolicy(what="callback URL", setting="CLARION_WEBHOOK_ALLOW_PRIVATE",
                       allow_private=settings.webhook_allow_private,
                       is_public=network.is_public),
        provider_settings(settings, network), timeout=settings.webhook_timeout_seconds,
        limit=100, headers={"user-agent": "Clarion-Webhook/0.1"})
    policy = DeliveryPolicy(
        batch_size=settings.delivery_batch_size, max_attempts=settings.delivery_max_attempts,
        rates={Platform.IOS: settings.rate_apns, Platform.ANDROID: settings.rate_fcm,
               Platform.WEB: settings.rate_webpush},
        concurrency_per_app=settings.provider_concurrency_per_app,
    )
    link_key = derived_key(keys[0], "tracked-links")
    senders = dict(senders if senders is not None else default_senders(settings, network))
    tokens = ApiTokenCache(db, clock, ttl_seconds=settings.api_token_cache_seconds)
    apps = Apps(db, box, clock, settings, tokens)
    events = EventBus(db, queue, clock)
    people = People(db, clock, settings, events)
    sends = Sends(db, clock, queue)
    compliance = Compliance(db, clock, derived_key(keys[0], "unsubscribe-links"),
                            settings.public_url)
    reports = Reports(db, clock)
    segments = Segments(db, clock)
    devices = Devices(db)
    journeys, journey_runtime, journey_facts = _journeys(db, clock, queue, events, sends,
                                                         segments, devices, reports)
    return Container(
        settings=settings, clock=clock, db=db, box=box, link_key=link_key, policy=policy,
        queue=queue, writer=writer, backlog=backlog, senders=senders, orgs=Orgs(db, clock),
        apps=apps, people=people,
        importer=Importer(db, clock, settings, events), devices=devices,
        registration=Registration(db, writer, tokens, clock, settings),
        processor=RegistrationProcessor(db=db, clock=clock, queue=queue, apps=apps,
                                        people=people, senders=senders, settings=settings),
        callbacks=Callbacks(callback_client),
        sends=sends,
        fanout=FanOut(db, clock, queue, policy, compliance.unsubscribe_url,
                      members=segments.members, outcomes=events.publish_push_outcomes),
        delivery=Delivery(db=db, clock=clock, queue=queue, apps=apps, senders=senders,
                          policy=policy, public_url=settings.public_url, link_key=link_key,
                          outcomes=events.publish_push_outcomes),
        interactions=Interactions(
            db=db, writer=writer, clock=clock, link_key=link_key,
            lookup_window_seconds=settings.events_lookup_window_ms / 1000,
            cache_size=settings.events_lookup_cache_size,
            rate_per_client=settings.events_rate_per_client,
            rate_burst=settings.events_rate_burst),
        recorder=Recorder(db, clock, queue),
        events=events,
        reports=reports,
        health=Health(db, clock, backlog),
        messages=Messages(db, clock, sends, _payload_previewer(),
                          public_url=settings.public_url, link_key=link_key,
                          unsubscribe_url=compliance.unsubscribe_url),
        compliance=compliance,
        segments=segments,
        triggers=Triggers(db, clock, queue),
        journeys=journeys,
        journey_runtime=journey_runtime,
        journey_facts=journey_facts,
    )


def _payload_previewer() -> PayloadPreviewer:
    from clarion.providers.preview import ProviderPayloads

    return ProviderPayloads()


def _journeys(db: Database, clock: Clock, queue: JobQueue, events: EventBus, sends: Sends,
              segments: Segments, devices: Devices, reports: Reports
              ) -> tuple[Journeys, JourneyRuntime, FilterFacts]:
    """Journeys and their runtime on the real segments, sends and person facts (conditions in
    the filter language), subscribed to interactions, triggers and person.created."""
    from clarion.domain import filters
    from clarion.services import journey_wiring as wiring
    from clarion.services.journey_facts import StoredFacts
    from clarion.services.journey_sends import SendsPush
    from clarion.services.journey_versions import Versions

    versions = Versions(db)
    pages = wiring.PagePeople(db, segments)
    facts = wiring.FilterFacts(db, StoredFacts(db, clock, wiring.evaluate_plain, reports),
                               versions, segments, devices, pages)
    runtime = JourneyRuntime(db, clock, queue, segments=pages,
                             push=SendsPush(db, sends, versions), facts=facts,
                             condition_parser=filters.parse)
    wiring.subscribe(events, runtime, versions, facts)
    journeys = Journeys(db, clock, filters.parse, went_live=runtime.started, reports=reports)
    return journeys, runtime, facts
