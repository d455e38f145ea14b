"""Processing accepted registration requests (``registration.process`` jobs).

Load the pending requests of the job, check them (API token still valid, person exists, token
format, platform configured, duplicate), run the dry-run send through the provider port
outside any transaction, then store every outcome in one transaction: devices inserted /
re-activated / moved / evicted, statuses set, callbacks enqueued as ``registration.callback``
jobs (tried once, as CIJ does), untracked requests forgotten. A request is only ever
processed while it is ``Pending``, so a job run twice (lease takeover after a crash) changes
nothing the second time.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from clarion.clock import Clock
from clarion.config import Settings
from clarion.domain.apps import AppSettings, TokenOwnerPolicy
from clarion.domain.netguard import check_url
from clarion.domain.outcomes import (
    DeviceAddress,
    DeviceSend,
    Notification,
    Outcome,
    OutcomeKind,
    Platform,
    Sender,
)
from clarion.domain.registration import (
    FailureReason,
    PendingRequest,
    Status,
    TokenKind,
    check_token,
    token_hash,
)
from clarion.errors import InvalidInput, NotFound
from clarion.services.apps import Apps
from clarion.services.people import People
from clarion.services.provider_trouble import TroubleLog, send_or_retry_later
from clarion.services.registration import REGISTRATION_PROCESS, ProcessRequests
from clarion.services.webhooks import REGISTRATION_CALLBACK, CallbackPost
from clarion.store import apps as app_store
from clarion.store import registrations as store
from clarion.store.db import Conn, Database
from clarion.store.jobs import JobQueue, NewJob

log = logging.getLogger(__name__)

MAX_DRY_RUN_RETRIES = 5


@dataclass
class _Work:
    row: PendingRequest
    status: Status = Status.PENDING
    reason: FailureReason | None = None
    detail: str | None = None
    person_kind: str | None = None
    existing: store.ExistingDevice | None = None  # same (app, person, token) if any
    retry_after: float | None = None

    def fail(self, reason: FailureReason, detail: str) -> None:
        self.status, self.reason, self.detail = Status.FAILED, reason, detail


class RegistrationProcessor:
    def __init__(self, *, db: Database, clock: Clock, queue: JobQueue, apps: Apps,
                 people: People, senders: Mapping[Platform, Sender],
                 settings: Settings) -> None:
        self._db = db
        self._clock = clock
        self._queue = queue
        self._apps = apps
        self._people = people
        self._senders = senders
        self._settings = settings
        self._trouble = TroubleLog(log, what=("dry run", "dry runs"))

    async def process(self, requests: ProcessRequests) -> None:
        """Process the still-pending requests among ``requests`` (idempotent)."""
        rows = await self._load_pending(requests.items)
        by_app: dict[str, list[PendingRequest]] = defaultdict(list)
        for row in rows:
            by_app[row.app_id].append(row)
        for app_id, app_rows in by_app.items():
            await self._process_app(app_id, app_rows, requests.attempt)

    async def _load_pending(self, items: Sequence[str | PendingRequest]
                            ) -> list[PendingRequest]:
        out = [i for i in items if isinstance(i, PendingRequest)]
        ids = [i for i in items if isinstance(i, str)]
        if ids:
            async with self._db.read() as conn:
                out += await store.pending_requests(conn, ids)
        # Request order, as accepted: the items of a job are in submission order, and
        # requests accepted in one commit share a timestamp, so the time alone cannot order
        # them (it decides who owns a token registered to two people in one batch).
        position = {(i if isinstance(i, str) else i.id): n for n, i in enumerate(items)}
        out.sort(key=lambda r: position[r.id])
        return out

    async def _process_app(self, app_id: str, rows: list[PendingRequest],
                           attempt: int) -> None:
        work = [_Work(row) for row in rows]
        org_id = rows[0].org_id
        try:
            settings = await self._apps.settings(app_id)
        except NotFound:
            for w in work:
                w.fail(FailureReason.FAILED_TO_STORE_DEVICE,
                       "the mobile app was deleted before the request was processed")
            await self._finish(app_id, work, AppSettings())
            return
        await self._check_tokens_and_people(org_id, work)
        registers = [w for w in work if w.status is Status.PENDING and w.row.kind == "register"]
        creds = await self._check_registers(
            app_id, registers, move=settings.token_owner_policy is TokenOwnerPolicy.MOVE)
        await self._dry_run(app_id, settings, creds, registers, attempt)
        await self._finish(app_id, work, settings)
        retry = [w for w in work if w.status is Status.PENDING and w.retry_after is not None]
        if retry:
            delay = max(w.retry_after or 1.0 for w in retry)
            async with self._db.write() as conn:
                # A tracked request shows why it is still Pending (`clarion devices
                # registration`, GET /v1/…/registrations/{id}).
                await store.note_pending(conn, [(w.row.id, w.detail) for w in retry
                                                if w.row.stored and w.detail])
                await self._queue.enqueue(conn, [REGISTRATION_PROCESS.job(
                    ProcessRequests([w.row if not w.row.stored else w.row.id for w in retry],
                                    attempt + 1),
                    run_at_ms=self._clock.epoch_ms() + int(delay * 1000))])

    async def _check_tokens_and_people(self, org_id: str, work: list[_Work]) -> None:
        async with self._db.read() as conn:
            valid = await app_store.active_api_token_ids(conn, {w.row.api_token_id
                                                                for w in work})
        people = await self._people.existing(org_id, {w.row.user_id for w in work})
        for w in work:
            if w.row.api_token_id not in valid:
                w.fail(FailureReason.API_TOKEN_NOT_VALID,
                       "the API token was revoked before the request was processed")
            elif w.row.kind == "register" and w.row.user_id not in people:
                w.fail(FailureReason.USER_NOT_FOUND,
                       f"UserId {w.row.user_id} is not a contact, lead or profile of this "
                       "organization: look the person up first (GET /api/data/v9.0/contacts?"
                       "$filter=emailaddress1 eq '...') or create them.")
            else:
                w.person_kind = people.get(w.row.user_id)

    async def _check_registers(self, app_id: str, work: list[_Work], *, move: bool
                               ) -> dict[Platform, Mapping[str, Any] | None]:
        creds: dict[Platform, Mapping[str, Any] | None] = {}
        for w in work:
            kind = w.row.kind_of_token
            bad = check_token(kind, w.row.token or "")
            if bad is None and kind is TokenKind.WEBPUSH:
                try:
                    check_url(w.row.token or "",
                              allow_private=self._settings.webpush_allow_private,
                              what="Web Push endpoint", setting="CLARION_WEBPUSH_ALLOW_PRIVATE")
                except InvalidInput as exc:
                    bad = (FailureReason.INVALID_DEVICE_TOKEN, str(exc))
            if bad is not None:
                w.fail(*bad)
                continue
            if kind.platform not in creds:
                creds[kind.platform] = await self._apps.platform_credentials(app_id,
                                                                             kind.platform)
            if creds[kind.platform] is None:
                w.fail(FailureReason.PLATFORM_NOT_CONFIGURED,
                       f"the app has no {kind.platform.value} configuration, so it cannot hold "
                       f"a token of kind {kind.value}: add one with `clarion apps update`.")
        pending = [w for w in work if w.status is Status.PENDING]
        hashes = sorted({token_hash(w.row.token or "") for w in pending})
        if not hashes:
            return creds
        async with self._db.read() as conn:
            existing = await store.devices_with_tokens(conn, app_id, hashes)
        index = {(d.person_id, d.token_hash): d for d in existing}
        # As if processed one after the other: under "move", a registration of the token to
        # someone else earlier in the run takes it away, so registering it back is not a
        # duplicate. (This also makes re-running a job harmless: the last owner stays.)
        seen: set[tuple[str, str]] = set()
        latest: dict[str, str] = {}  # token hash -> the person of the latest registration
        for w in pending:
            digest = token_hash(w.row.token or "")
            key = (w.row.user_id, digest)
            w.existing = index.get(key)
            taken_away = move and latest.get(digest, w.row.user_id) != w.row.user_id
            active = key in seen or (w.existing is not None and w.existing.state == "active")
            if active and not taken_away:
                w.fail(FailureReason.DUPLICATE_EXISTS,
                       "this device token is already registered to this user for this app")
            seen.add(key)
            latest[digest] = w.row.user_id
        return creds

    async def _dry_run(self, app_id: str, settings: AppSettings,
                       creds: Mapping[Platform, Mapping[str, Any] | None], work: list[_Work],
                       attempt: int) -> None:
        pending = [w for w in work if w.status is Status.PENDING]
        if not pending or not settings.dry_run_on_register:
            return
        by_platform: dict[Platform, list[_Work]] = defaultdict(list)
        for w in pending:
            by_platform[w.row.kind_of_token.platform].append(w)
        for platform, items in by_platform.items():
            sender = self._senders.get(platform)
            platform_creds = creds.get(platform)
            if sender is None or platform_creds is None:  # a process built without one
                for w in items:
                    w.detail = (f"dry run skipped: this process has no {platform.value} "
                                "sender")
                continue
            batch = [DeviceSend(
                delivery_id=w.row.id,
                device=DeviceAddress(platform, w.row.token or "", w.row.web_keys),
                notification=Notification(), dry_run=True,
            ) for w in items]
            outcomes = await send_or_retry_later(
                sender, platform, platform_creds, batch, logger=log,
                failed="dry run through the %s sender failed",
                detail="Clarion failed during the dry run", retry_after_seconds=5.0)
            self._trouble.batch(app_id, platform, outcomes)
            await self._apply_dry_run(app_id, platform, items, outcomes, attempt)

    async def _apply_dry_run(self, app_id: str, platform: Platform, items: list[_Work],
                             outcomes: list[Outcome], attempt: int) -> None:
        by_id = {o.delivery_id: o for o in outcomes}
        for w in items:
            o = by_id.get(w.row.id)
            if o is None:
                w.fail(FailureReason.DRY_RUN_SENDING_FAILED,
                       "final, not retried: the provider adapter gave no outcome for the test "
                       "push")
                continue
            if o.kind is OutcomeKind.ACCEPTED:
                continue
            cause = f"{o.reason or o.kind.value}{': ' + o.detail if o.detail else ''}"
            tries = attempt + 1
            if o.kind is OutcomeKind.RETRY_LATER and attempt < MAX_DRY_RUN_RETRIES:
                w.retry_after = o.retry_after_seconds or 2.0 ** tries
                w.detail = (f"the test push through {platform.value} failed (attempt {tries} of "
                            f"{MAX_DRY_RUN_RETRIES + 1}; retried in {w.retry_after:g} s): "
                            f"{cause}")
            elif o.kind is OutcomeKind.RETRY_LATER:
                w.fail(FailureReason.DRY_RUN_SENDING_FAILED,
                       f"final, not retried: the test push through {platform.value} failed "
                       f"{tries} times: {cause}")
            else:
                w.fail(FailureReason.DRY_RUN_SENDING_FAILED,
                       f"final, not retried: the {platform.value} provider refused the test "
                       f"push: {cause}")
                if o.kind is OutcomeKind.CREDENTIAL_ERROR:
                    await self._apps.mark_credentials_invalid(
                        app_id, platform, o.detail or o.reason or "credential error")

    async def _finish(self, app_id: str, work: list[_Work], settings: AppSettings) -> None:
        """Store every decided request's outcome; on a store failure fall back to one by
        one."""
        decided = [w for w in work if w.retry_after is None]
        if not decided:
            return
        try:
            async with self._db.write() as conn:
                await self._store(conn, app_id, decided, settings)
        except Exception:
            log.exception("storing %d registrations failed; retrying one by one", len(decided))
            for w in decided:
                try:
                    async with self._db.write() as conn:
                        await self._store(conn, app_id, [w], settings)
                except Exception as exc:
                    log.exception("storing registration %s failed", w.row.id)
                    w.fail(FailureReason.FAILED_TO_STORE_DEVICE,
                           f"the device could not be stored: {type(exc).__name__}")
                    async with self._db.write() as conn:
                        await self._record(conn, [w])

    async def _store(self, conn: Conn, app_id: str, work: list[_Work],
                     settings: AppSettings) -> None:
        """Apply the batch set-based. Runs of registrations and cleanups are applied in
        request order, so "register, clean up, register again" holds."""
        ok = [w for w in work if w.status is not Status.FAILED]
        for kind, run in groupby(ok, key=lambda w: w.row.kind):
            items = list(run)
            if kind == "cleanup":
                for w in items:
                    token = w.row.token
                    # APNs tokens are stored lower-cased; other kinds as given.
                    await store.delete_devices(
                        conn, app_id, w.row.user_id,
                        {token_hash(token), token_hash(token.lower())} if token else None)
            else:
                await self._register_run(conn, app_id, items, settings)
            for w in items:
                w.status = Status.SUCCESS
        await self._record(conn, work)

    async def _register_run(self, conn: Conn, app_id: str, items: list[_Work],
                            settings: AppSettings) -> None:
        now = self._clock.now()
        move = settings.token_owner_policy is TokenOwnerPolicy.MOVE
        # With "move" the last registration of a token in the run is its owner; earlier ones
        # succeed and are moved away at once (as if processed one after the other).
        owner: dict[str, _Work] = {token_hash(w.row.token or ""): w for w in items}
        keep = [w for w in items if not move or owner[token_hash(w.row.token or "")] is w]
        if move:
            await store.move_tokens(conn, app_id, {h: w.row.user_id for h, w in owner.items()})
        await store.insert_devices(conn, app_id, [store.NewDevice(
            org_id=w.row.org_id, person_id=w.row.user_id,
            platform=w.row.kind_of_token.platform.value, token=w.row.token or "",
            token_hash=token_hash(w.row.token or ""), web_keys=w.row.web_keys)
            for w in keep if w.existing is None], now)
        await store.revive_devices(conn, [
            store.Revived(w.existing.id, w.row.token or "", w.row.web_keys)
            for w in keep if w.existing is not None], now)
        await store.evict_over_cap(conn, app_id, sorted({w.row.user_id for w in keep}),
                                   settings.max_devices_per_person)

    async def _record(self, conn: Conn, work: list[_Work]) -> None:
        callbacks: list[NewJob] = []
        forget: list[str] = []
        tracked: list[store.Finished] = []
        for w in work:
            if w.status is Status.PENDING:
                continue
            row = w.row
            if row.callback_url:
                callbacks.append(REGISTRATION_CALLBACK.job(CallbackPost(
                    url=row.callback_url, headers=row.callback_headers or {},
                    body={"Status": w.status.value, "Signature": row.callback_signature,
                          "FailureReason": w.reason.value if w.reason else None},
                    request_id=row.id)))
            if not row.stored:
                continue  # nothing stored, nothing to forget
            if row.tracked:
                tracked.append(store.Finished(row.id, w.status.value,
                                              w.reason.value if w.reason else None, w.detail))
            else:
                forget.append(row.id)
        await store.finish_tracked(conn, tracked, self._clock.now())
        await store.forget(conn, forget)
        if callbacks:
            await self._queue.enqueue(conn, callbacks)
