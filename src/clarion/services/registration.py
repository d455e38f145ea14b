"""Device registration, CIJ-compatible and asynchronous.

Accept (hot path, in the request): parse → check the API token against the in-memory cache →
hand one row per request to the group-commit writer together with a batch job → answer 202
once committed. Nothing else touches the database on this path.

Process (worker, ``registration.process`` jobs): load the pending requests of the job, check
them (API token still valid, person exists, token format, platform configured, duplicate),
run the dry-run send through the provider port outside any transaction, then store every
outcome in one transaction: devices inserted / re-activated / moved / evicted, statuses set,
callbacks enqueued as ``registration.callback`` jobs (tried once, as CIJ does), untracked
requests forgotten. A request is only ever processed while it is ``Pending``, so a job run
twice (lease takeover after a crash) changes nothing the second time.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.clock import Clock
from clarion.config import Settings
from clarion.crypto import SecretBox, hmac_sha256_b64
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
    CleanupRequest,
    DeviceRequest,
    FailureReason,
    Status,
    TokenKind,
    check_token,
    token_hash,
)
from clarion.errors import InvalidInput, NotFound
from clarion.ids import new_id
from clarion.services import apps as apps_service
from clarion.services import people as people_service
from clarion.services.apps import ApiTokenCache, ApiTokenInfo
from clarion.store import tables as t
from clarion.store.db import Database
from clarion.store.group_commit import GroupCommitWriter
from clarion.store.jobs import JobQueue, NewJob

log = logging.getLogger(__name__)

PROCESS_JOB = "registration.process"
CALLBACK_JOB = "registration.callback"
MAX_DRY_RUN_RETRIES = 5
_R = t.registration_requests
_D = t.devices


@dataclass(frozen=True, slots=True)
class Callback:
    url: str
    headers: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class StatusEntry:
    request_id: str
    status: Status
    failure_reason: str | None


@dataclass(frozen=True, slots=True)
class Deps:
    """What processing needs; built by the worker from the container."""

    db: Database
    clock: Clock
    box: SecretBox
    queue: JobQueue
    senders: Mapping[Platform, Sender]
    settings: Settings


# --------------------------------------------------------------------------- accept


async def _verify(
    api_tokens: ApiTokenCache, org_id: str, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], ApiTokenInfo]:
    found: dict[tuple[str, str], ApiTokenInfo] = {}
    for app_id, token in set(pairs):
        info = await api_tokens.verify(org_id=org_id, app_id=app_id, token=token)
        if info is None:
            # Nothing is stored for a request with a bad token (CIJ: "leaves no trace").
            raise InvalidInput(
                f"ApiToken is not valid for MobileAppId {app_id} in organization {org_id}",
                fix="Use an API token from the app's developer information (`clarion apps "
                "developer-info`), check MobileAppId and the organization id in the URL, and "
                "make sure the token was not revoked.",
                field="ApiToken", code="ApiTokenNotValid",
            )
        found[(app_id, token)] = info
    return found


async def accept_devices(
    *,
    writer: GroupCommitWriter,
    api_tokens: ApiTokenCache,
    clock: Clock,
    settings: Settings,
    org_id: str,
    requests: Sequence[DeviceRequest],
    tracked: bool,
    callback: Callback | None,
) -> list[str]:
    """Commit registration requests (group commit) and return their ids (in request order)."""
    tokens = await _verify(api_tokens, org_id, ((r.mobile_app_id, r.api_token) for r in requests))
    if callback is not None:
        check_url(callback.url, allow_private=settings.webhook_allow_private)
    if not tracked and callback is None:
        # Nobody will ask for these outcomes: they ride in the job itself (see InlineRequest).
        items = [_inline_item(org_id, r.mobile_app_id, tokens[(r.mobile_app_id, r.api_token)],
                              "register", r.user_id, token_kind=r.token_kind.value,
                              token=r.token, web_keys=r.web_keys) for r in requests]
        await writer.submit([], batch_job=(PROCESS_JOB, items))
        return [item["id"] for item in items]
    now = clock.now()
    rows = [_request_row(
        org_id, r.mobile_app_id, tokens[(r.mobile_app_id, r.api_token)], "register",
        r.user_id, now, token_kind=r.token_kind.value, token=r.token, web_keys=r.web_keys,
        tracked=tracked, callback=callback,
        signature=hmac_sha256_b64(r.api_token, callback.url) if callback else None,
    ) for r in requests]
    ids = [row["id"] for row in rows]
    await writer.submit([(_R, rows)], batch_job=(PROCESS_JOB, ids))
    return ids


@dataclass(frozen=True, slots=True)
class InlineRequest:
    """An untracked registration request without a callback, carried in the job's payload.

    Its outcome is never reported (no status API, no callback), so it needs no row of its own:
    accepting it costs one job row shared by the whole group commit instead of a row per
    request, and processing it costs no load and no delete. It is exactly as durable: the job
    is committed before the 202. A job run twice (lease takeover) re-applies the same requests,
    which is harmless: a token already registered to the person is a duplicate and changes
    nothing, a cleanup deletes what is already gone."""

    id: str
    org_id: str
    app_id: str
    api_token_id: str
    kind: str
    user_id: str
    token_kind: str | None = None
    token: str | None = None
    web_keys: dict[str, str] | None = None
    tracked: bool = False
    callback_url: str | None = None
    callback_headers: dict[str, str] | None = None
    callback_signature: str | None = None

    def payload(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _INLINE_FIELDS}


_INLINE_FIELDS = ("id", "org_id", "app_id", "api_token_id", "kind", "user_id", "token_kind",
                  "token", "web_keys")


def _inline_item(
    org_id: str, app_id: str, api_token: ApiTokenInfo, kind: str, user_id: str, *,
    token_kind: str | None = None, token: str | None = None,
    web_keys: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A request as it rides in its job: the fields of ``InlineRequest.payload()``."""
    return {"id": new_id(), "org_id": org_id, "app_id": app_id,
            "api_token_id": api_token.token_id, "kind": kind, "user_id": user_id,
            "token_kind": token_kind, "token": token, "web_keys": web_keys}


def _job_item(row: Any) -> str | dict[str, Any]:
    """How a request is named in a ``registration.process`` job: its id, or itself."""
    return row.payload() if isinstance(row, InlineRequest) else str(row.id)


def _request_row(
    org_id: str, app_id: str, api_token: ApiTokenInfo, kind: str, user_id: str, now: datetime,
    *,
    token_kind: str | None = None, token: str | None = None,
    web_keys: dict[str, str] | None = None, tracked: bool = False,
    callback: Callback | None = None, signature: str | None = None,
) -> dict[str, Any]:
    return {
        "id": new_id(), "org_id": org_id, "app_id": app_id,
        "api_token_id": api_token.token_id, "kind": kind, "user_id": user_id,
        "token_kind": token_kind, "token": token, "web_keys": web_keys, "tracked": tracked,
        "callback_url": callback.url if callback else None,
        "callback_headers": callback.headers if callback else None,
        "callback_signature": signature, "status": Status.PENDING.value,
        "failure_reason": None, "detail": None, "created_at": now, "finished_at": None,
    }


async def accept_cleanups(
    *,
    writer: GroupCommitWriter,
    api_tokens: ApiTokenCache,
    clock: Clock,
    org_id: str,
    requests: Sequence[CleanupRequest],
) -> list[str]:
    tokens = await _verify(api_tokens, org_id, ((r.mobile_app_id, r.api_token) for r in requests))
    items = [_inline_item(org_id, r.mobile_app_id, tokens[(r.mobile_app_id, r.api_token)],
                          "cleanup", r.user_id, token=r.device_token) for r in requests]
    await writer.submit([], batch_job=(PROCESS_JOB, items))
    return [item["id"] for item in items]


async def statuses(
    *,
    db: Database,
    api_tokens: ApiTokenCache,
    org_id: str,
    app_id: str,
    api_token: str,
    request_ids: Sequence[str],
) -> list[StatusEntry]:
    """Status per id, in the order asked. An id Clarion does not know (never tracked, another
    app's, or purged after the retention period) reads ``Pending``, as in CIJ."""
    await _verify(api_tokens, org_id, [(app_id, api_token)])
    async with db.read() as conn:
        rows = (await conn.execute(
            select(_R.c.id, _R.c.status, _R.c.failure_reason).where(
                _R.c.id.in_(set(request_ids)), _R.c.app_id == app_id, _R.c.org_id == org_id,
                _R.c.tracked.is_(True),
            )
        )).all()
    known = {r.id: r for r in rows}
    out = []
    for rid in request_ids:
        row = known.get(rid)
        if row is None:
            out.append(StatusEntry(rid, Status.PENDING, None))
        else:
            out.append(StatusEntry(rid, Status(row.status), row.failure_reason))
    return out


# --------------------------------------------------------------------------- process


@dataclass
class _Work:
    row: Any
    status: Status = Status.PENDING
    reason: FailureReason | None = None
    detail: str | None = None
    person_kind: str | None = None
    existing: Any = None  # a devices row with the same (app, person, token) if any
    retry_after: float | None = None

    def fail(self, reason: FailureReason, detail: str) -> None:
        self.status, self.reason, self.detail = Status.FAILED, reason, detail


async def process(
    *, deps: Deps, request_ids: Sequence[str | Mapping[str, Any]], attempt: int = 0
) -> None:
    """Process the still-pending requests among ``request_ids`` (idempotent): the ids of
    stored requests and, in the same order, inline requests (``InlineRequest.payload()``)."""
    rows = await _load_pending(deps.db, request_ids)
    by_app: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_app[row.app_id].append(row)
    for app_id, app_rows in by_app.items():
        await _process_app(deps, app_id, app_rows, attempt)


async def _load_pending(db: Database, items: Sequence[str | Mapping[str, Any]]) -> list[Any]:
    out: list[Any] = []
    ids: list[str] = []
    for item in items:
        if isinstance(item, str):
            ids.append(item)
        else:
            fields: dict[str, Any] = {k: item.get(k) for k in _INLINE_FIELDS}
            out.append(InlineRequest(**fields))
    if ids:
        async with db.read() as conn:
            for chunk in _chunks(ids):
                out.extend((await conn.execute(
                    select(_R).where(_R.c.id.in_(chunk), _R.c.status == Status.PENDING.value)
                )).all())
    # Request order, as accepted: the items of a job are in submission order, and requests
    # accepted in one commit share a timestamp, so the time alone cannot order them (it
    # decides who owns a token registered to two people in one batch).
    position = {(i if isinstance(i, str) else str(i.get("id"))): n for n, i in enumerate(items)}
    out.sort(key=lambda r: position[str(r.id)])
    return out


async def _process_app(deps: Deps, app_id: str, rows: list[Any], attempt: int) -> None:
    work = [_Work(row) for row in rows]
    org_id = rows[0].org_id
    try:
        settings = await apps_service.get_app_settings(db=deps.db, app_id=app_id)
    except NotFound:
        for w in work:
            w.fail(FailureReason.FAILED_TO_STORE_DEVICE,
                   "the mobile app was deleted before the request was processed")
        await _finish(deps, app_id, work, AppSettings())
        return
    await _check_tokens_and_people(deps.db, org_id, work)
    registers = [w for w in work if w.status is Status.PENDING and w.row.kind == "register"]
    creds = await _check_registers(
        deps, app_id, registers, move=settings.token_owner_policy is TokenOwnerPolicy.MOVE)
    await _dry_run(deps, app_id, settings, creds, registers, attempt)
    await _finish(deps, app_id, work, settings)
    retry = [w for w in work if w.status is Status.PENDING and w.retry_after is not None]
    if retry:
        delay = max(w.retry_after or 1.0 for w in retry)
        await deps.queue.enqueue_now([NewJob(
            kind=PROCESS_JOB, payload={"ids": [_job_item(w.row) for w in retry],
                                       "attempt": attempt + 1},
            run_at_ms=deps.clock.epoch_ms() + int(delay * 1000),
        )])


async def _check_tokens_and_people(db: Database, org_id: str, work: list[_Work]) -> None:
    token_ids = {w.row.api_token_id for w in work}
    user_ids = {w.row.user_id for w in work}
    async with db.read() as conn:
        valid = set((await conn.execute(
            select(t.api_tokens.c.id).where(
                t.api_tokens.c.id.in_(token_ids), t.api_tokens.c.revoked_at.is_(None))
        )).scalars())
    people = await people_service.existing_people(db=db, org_id=org_id, person_ids=user_ids)
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


async def _check_registers(
    deps: Deps, app_id: str, work: list[_Work], *, move: bool
) -> dict[Platform, Mapping[str, Any] | None]:
    creds: dict[Platform, Mapping[str, Any] | None] = {}
    for w in work:
        kind = TokenKind(w.row.token_kind)
        bad = check_token(kind, w.row.token)
        if bad is None and kind is TokenKind.WEBPUSH:
            try:
                check_url(w.row.token, allow_private=deps.settings.webpush_allow_private,
                          what="Web Push endpoint", setting="CLARION_WEBPUSH_ALLOW_PRIVATE")
            except InvalidInput as exc:
                bad = (FailureReason.INVALID_DEVICE_TOKEN, str(exc))
        if bad is not None:
            w.fail(*bad)
            continue
        if kind.platform not in creds:
            creds[kind.platform] = await apps_service.load_platform_credentials(
                db=deps.db, box=deps.box, app_id=app_id, platform=kind.platform)
        if creds[kind.platform] is None:
            w.fail(FailureReason.PLATFORM_NOT_CONFIGURED,
                   f"the app has no {kind.platform.value} configuration, so it cannot hold a "
                   f"token of kind {kind.value}: add one with `clarion apps update`.")
    pending = [w for w in work if w.status is Status.PENDING]
    hashes = {token_hash(w.row.token) for w in pending}
    if not hashes:
        return creds
    existing: list[Any] = []
    async with deps.db.read() as conn:
        for chunk in _chunks(sorted(hashes)):
            existing += (await conn.execute(
                select(_D).where(_D.c.app_id == app_id, _D.c.token_hash.in_(chunk))
            )).all()
    index = {(d.person_id, d.token_hash): d for d in existing}
    # As if processed one after the other: under "move", a registration of the token to
    # someone else earlier in the run takes it away, so registering it back is not a
    # duplicate. (This also makes re-running a job harmless: the last owner stays the owner.)
    seen: set[tuple[str, str]] = set()
    latest: dict[str, str] = {}  # token hash -> the person of the latest registration so far
    for w in pending:
        digest = token_hash(w.row.token)
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


async def _dry_run(
    deps: Deps,
    app_id: str,
    settings: AppSettings,
    creds: Mapping[Platform, Mapping[str, Any] | None],
    work: list[_Work],
    attempt: int,
) -> None:
    pending = [w for w in work if w.status is Status.PENDING]
    if not pending:
        return
    if not settings.dry_run_on_register:
        return
    by_platform: dict[Platform, list[_Work]] = defaultdict(list)
    for w in pending:
        by_platform[TokenKind(w.row.token_kind).platform].append(w)
    for platform, items in by_platform.items():
        sender = deps.senders.get(platform)
        platform_creds = creds.get(platform)
        if sender is None or platform_creds is None:
            for w in items:
                w.detail = (f"dry run skipped: this build has no {platform.value} provider "
                            "adapter yet")
            continue
        batch = [DeviceSend(
            delivery_id=w.row.id,
            device=DeviceAddress(platform, w.row.token, w.row.web_keys),
            notification=Notification(), dry_run=True,
        ) for w in items]
        try:
            outcomes = await sender.send(platform_creds, batch)
        except Exception as exc:  # a broken adapter must not lose the requests
            log.exception("dry run through the %s sender failed", platform.value)
            outcomes = [Outcome(s.delivery_id, OutcomeKind.RETRY_LATER, reason="InternalError",
                                detail=f"Clarion failed during the dry run "
                                f"({type(exc).__name__}); it is retried", retry_after_seconds=5.0)
                        for s in batch]
        await _apply_dry_run(deps, app_id, platform, items, outcomes, attempt)


async def _apply_dry_run(
    deps: Deps, app_id: str, platform: Platform, items: list[_Work], outcomes: list[Outcome],
    attempt: int,
) -> None:
    by_id = {o.delivery_id: o for o in outcomes}
    for w in items:
        o = by_id.get(w.row.id)
        if o is None:
            w.fail(FailureReason.DRY_RUN_SENDING_FAILED, "the provider adapter gave no outcome")
        elif o.kind is OutcomeKind.ACCEPTED:
            continue
        elif o.kind is OutcomeKind.RETRY_LATER and attempt < MAX_DRY_RUN_RETRIES:
            w.retry_after = o.retry_after_seconds or 2.0 ** (attempt + 1)
        else:
            w.fail(FailureReason.DRY_RUN_SENDING_FAILED,
                   f"the {platform.value} provider refused the test push: "
                   f"{o.reason or o.kind.value}{': ' + o.detail if o.detail else ''}")
            if o.kind is OutcomeKind.CREDENTIAL_ERROR:
                await apps_service.mark_credentials_invalid(
                    db=deps.db, clock=deps.clock, app_id=app_id, platform=platform,
                    reason=o.detail or o.reason or "credential error")


async def _finish(deps: Deps, app_id: str, work: list[_Work], settings: AppSettings) -> None:
    """Store every decided request's outcome; on a store failure fall back to one by one."""
    decided = [w for w in work if w.retry_after is None]
    if not decided:
        return
    try:
        async with deps.db.write() as conn:
            await _store(deps, conn, app_id, decided, settings)
    except Exception:
        log.exception("storing %d registrations failed; retrying one by one", len(decided))
        for w in decided:
            try:
                async with deps.db.write() as conn:
                    await _store(deps, conn, app_id, [w], settings)
            except Exception as exc:
                log.exception("storing registration %s failed", w.row.id)
                w.fail(FailureReason.FAILED_TO_STORE_DEVICE, f"the device could not be stored: "
                       f"{type(exc).__name__}")
                async with deps.db.write() as conn:
                    await _record(deps, conn, [w])


async def _store(
    deps: Deps, conn: AsyncConnection, app_id: str, work: list[_Work], settings: AppSettings
) -> None:
    """Apply the batch set-based: a handful of statements per batch, not per request (on SQLite
    the single writer is shared with the API's group commits). Runs of registrations and
    cleanups are applied in request order, so "register, clean up, register again" holds."""
    now = deps.clock.now()
    ok = [w for w in work if w.status is not Status.FAILED]
    for kind, run in groupby(ok, key=lambda w: w.row.kind):
        items = list(run)
        if kind == "cleanup":
            for w in items:
                await _cleanup(conn, app_id, w.row)
        else:
            await _register_run(conn, app_id, items, settings, now)
        for w in items:
            w.status = Status.SUCCESS
    await _record(deps, conn, work)


def _chunks(items: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    """Bounded IN lists: drivers cap bound parameters (asyncpg 32,767; SQLite 32,766)."""
    for i in range(0, len(items), size):
        yield items[i:i + size]


async def _register_run(
    conn: AsyncConnection, app_id: str, items: list[_Work], settings: AppSettings,
    now: datetime,
) -> None:
    move = settings.token_owner_policy is TokenOwnerPolicy.MOVE
    # With "move" the last registration of a token in the run is its owner; earlier ones
    # succeed and are moved away at once (as if processed one after the other).
    owner: dict[str, _Work] = {token_hash(w.row.token): w for w in items}
    keep = [w for w in items if not move or owner[token_hash(w.row.token)] is w]
    if move:
        victims: list[str] = []
        for chunk in _chunks(list(owner)):
            rows = (await conn.execute(select(_D.c.id, _D.c.person_id, _D.c.token_hash).where(
                _D.c.app_id == app_id, _D.c.token_hash.in_(chunk)))).all()
            victims += [r.id for r in rows if r.person_id != owner[r.token_hash].row.user_id]
        for chunk in _chunks(victims):
            await conn.execute(delete(_D).where(_D.c.id.in_(chunk)))
    fresh = [w for w in keep if w.existing is None]
    if fresh:
        await conn.execute(insert(_D), [{
            "id": str(uuid.uuid4()), "org_id": w.row.org_id, "app_id": app_id,
            "person_id": w.row.user_id, "platform": TokenKind(w.row.token_kind).platform.value,
            "token": w.row.token, "token_hash": token_hash(w.row.token),
            "web_keys": w.row.web_keys, "state": "active", "state_reason": None,
            "state_changed_at": now, "created_at": now, "updated_at": now,
            "last_registered_at": now} for w in fresh])
    revived = [w for w in keep if w.existing is not None]
    if revived:
        await conn.execute(
            update(_D).where(_D.c.id == bindparam("b_id")).values(
                state="active", state_reason=None, state_changed_at=now, updated_at=now,
                last_registered_at=now, web_keys=bindparam("b_keys"), token=bindparam("b_token")),
            [{"b_id": w.existing.id, "b_keys": w.row.web_keys, "b_token": w.row.token}
             for w in revived])
    await _evict_over_cap(conn, app_id, sorted({w.row.user_id for w in keep}),
                          settings.max_devices_per_person)


async def _evict_over_cap(
    conn: AsyncConnection, app_id: str, person_ids: list[str], cap: int
) -> None:
    """One grouped count for the batch; only people over the cap cost more statements."""
    over: list[tuple[str, int]] = []
    for chunk in _chunks(person_ids):
        over += [(r.person_id, int(r.n)) for r in (await conn.execute(
            select(_D.c.person_id, func.count().label("n")).where(
                _D.c.app_id == app_id, _D.c.person_id.in_(chunk))
            .group_by(_D.c.person_id).having(func.count() > cap))).all()]
    for person_id, count in over:
        oldest = select(_D.c.id).where(
            _D.c.app_id == app_id, _D.c.person_id == person_id).order_by(
            _D.c.last_registered_at.asc(), _D.c.created_at.asc()).limit(count - cap)
        victims = list((await conn.execute(oldest)).scalars())
        await conn.execute(delete(_D).where(_D.c.id.in_(victims)))
        log.info("app %s person %s: evicted %d oldest device(s) over the cap of %d",
                 app_id, person_id, len(victims), cap)


async def _cleanup(conn: AsyncConnection, app_id: str, row: Any) -> None:
    cond = and_(_D.c.app_id == app_id, _D.c.person_id == row.user_id)
    if row.token:
        # APNs tokens are stored lower-cased; other kinds as given.
        cond = and_(cond, _D.c.token_hash.in_({token_hash(row.token),
                                                token_hash(row.token.lower())}))
    await conn.execute(delete(_D).where(cond))


async def _record(deps: Deps, conn: AsyncConnection, work: list[_Work]) -> None:
    now = deps.clock.now()
    callbacks: list[NewJob] = []
    forget: list[str] = []
    tracked: list[dict[str, Any]] = []
    for w in work:
        if w.status is Status.PENDING:
            continue
        row = w.row
        if row.callback_url:
            callbacks.append(NewJob(kind=CALLBACK_JOB, max_attempts=1, payload={
                "url": row.callback_url, "headers": row.callback_headers or {},
                "body": {"Status": w.status.value, "Signature": row.callback_signature,
                         "FailureReason": w.reason.value if w.reason else None},
                "request_id": row.id,
            }))
        if isinstance(row, InlineRequest):
            continue  # nothing stored, nothing to forget
        if row.tracked:
            tracked.append({"b_id": row.id, "b_status": w.status.value,
                            "b_reason": w.reason.value if w.reason else None,
                            "b_detail": w.detail})
        else:
            forget.append(row.id)
    if tracked:
        await conn.execute(update(_R).where(_R.c.id == bindparam("b_id")).values(
            status=bindparam("b_status"), failure_reason=bindparam("b_reason"),
            detail=bindparam("b_detail"), finished_at=now), tracked)
    for chunk in _chunks(forget):
        await conn.execute(delete(_R).where(_R.c.id.in_(chunk)))
    if callbacks:
        await deps.queue.enqueue(conn, callbacks)


async def purge_finished(*, db: Database, clock: Clock, retention_days: int) -> int:
    """Forget finished tracked requests older than the retention period."""
    cutoff = clock.now().timestamp() - retention_days * 86400
    cutoff_dt = datetime.fromtimestamp(cutoff, tz=clock.now().tzinfo)
    async with db.write() as conn:
        result = await conn.execute(delete(_R).where(
            _R.c.status != Status.PENDING.value, _R.c.finished_at < cutoff_dt))
    return int(result.rowcount or 0)
