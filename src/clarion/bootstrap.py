"""Composition root: settings -> engine, secret box, job queue, writer, providers -> services.

Nothing here runs at import. ``build()`` wires objects; ``Container.start()`` opens what needs a
running event loop and ``Container.close()`` releases it. Tests call ``build()`` with their own
clock and fake senders; the API, the worker and the CLI all go through here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from clarion.clock import Clock, SystemClock
from clarion.config import Settings
from clarion.crypto import SecretBox, derived_key
from clarion.domain.netguard import OutboundPolicy
from clarion.domain.outcomes import Platform, Sender
from clarion.providers.base import Network, ProviderSettings
from clarion.providers.outbound import OutboundClient
from clarion.services.apps import ApiTokenCache
from clarion.services.delivery import DeliveryPolicy, Limiter
from clarion.services.events import EventBus
from clarion.services.interactions import Interactions
from clarion.store.backlog import Backlog
from clarion.store.db import Database
from clarion.store.group_commit import GroupCommitWriter
from clarion.store.jobs import JobQueue


@dataclass
class Container:
    settings: Settings
    clock: Clock
    db: Database
    box: SecretBox
    queue: JobQueue
    writer: GroupCommitWriter
    backlog: Backlog  # accepted work waiting, against CLARION_MAX_BACKLOG
    senders: Mapping[Platform, Sender]
    callbacks: OutboundClient  # registration callbacks (the callback SSRF policy)
    api_tokens: ApiTokenCache
    policy: DeliveryPolicy
    limiter: Limiter
    link_key: bytes  # signs tracked links (clarion.domain.links)
    events: EventBus  # in-service events (subscribe here at bootstrap: services/events.py)
    interactions: Interactions  # interaction reports and tracked-link clicks
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
    callbacks = OutboundClient(
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
    interactions = Interactions(
        db=db, writer=writer, queue=queue, clock=clock, link_key=link_key,
        lookup_window_seconds=settings.events_lookup_window_ms / 1000,
        cache_size=settings.events_lookup_cache_size,
        rate_per_client=settings.events_rate_per_client, rate_burst=settings.events_rate_burst,
    )
    return Container(
        settings=settings, clock=clock, db=db, box=box, queue=queue, writer=writer,
        backlog=backlog,
        senders=dict(senders if senders is not None else default_senders(settings, network)),
        callbacks=callbacks,
        api_tokens=ApiTokenCache(db, clock, ttl_seconds=settings.api_token_cache_seconds),
        policy=policy, limiter=Limiter(policy), link_key=link_key, events=EventBus(),
        interactions=interactions,
    )
