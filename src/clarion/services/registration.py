"""Device registration, CIJ-compatible and asynchronous: accepting requests and answering
their status. (Processing them is ``clarion.services.registration_processing``.)

Accept (hot path, in the request): parse → check the API token against the in-memory cache →
hand the requests to the group-commit writer together with their ``registration.process``
job → answer 202 once committed. Nothing else touches the database on this path.

Untracked requests without a callback (CIJ's default) have no status anyone can ask for, so
they get no row: they ride inside the commit's job (``PendingRequest`` with ``stored``
False). Accepting one costs a share of one job row instead of a row of its own, and
processing it costs no load and no delete. It is exactly as durable: the job is committed
before the 202. A job run twice (lease takeover) re-applies the same requests, which is
harmless: a token already registered to the person is a duplicate and changes nothing, a
cleanup deletes what is already gone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from clarion.clock import Clock
from clarion.config import Settings
from clarion.crypto import hmac_sha256_b64
from clarion.domain.apps import ApiTokenInfo
from clarion.domain.netguard import check_url
from clarion.domain.registration import (
    CleanupRequest,
    DeviceRequest,
    PendingRequest,
    Status,
)
from clarion.errors import InvalidInput
from clarion.ids import new_id
from clarion.services.api_tokens import ApiTokenCache
from clarion.store import registrations as store
from clarion.store.db import Database
from clarion.store.group_commit import GroupCommitWriter
from clarion.store.tasks import Task

# How an untracked request rides in its job: these fields of ``PendingRequest``.
_INLINE_FIELDS = ("id", "org_id", "app_id", "api_token_id", "kind", "user_id", "token_kind",
                  "token", "web_keys")


@dataclass(frozen=True, slots=True)
class ProcessRequests:
    """Requests to process, in accept order: ids of stored requests, or inline requests."""

    items: list[str | PendingRequest]
    attempt: int = 0  # how many times their dry run asked to be retried

    def encode(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ids": [i if isinstance(i, str) else _encode(i)
                                       for i in self.items]}
        if self.attempt:
            out["attempt"] = self.attempt
        return out

    @staticmethod
    def decode(payload: Mapping[str, Any]) -> ProcessRequests:
        return ProcessRequests(
            [i if isinstance(i, str) else PendingRequest(**{k: i.get(k) for k in _INLINE_FIELDS})
             for i in payload["ids"]],
            int(payload.get("attempt", 0)))


def _encode(request: PendingRequest) -> dict[str, Any]:
    return {k: getattr(request, k) for k in _INLINE_FIELDS}


def _inline(org_id: str, app_id: str, api_token: ApiTokenInfo, kind: str, user_id: str, *,
            token_kind: str | None = None, token: str | None = None,
            web_keys: dict[str, str] | None = None) -> dict[str, Any]:
    """An untracked request as it rides in its job (``_encode`` of it, built directly: this
    is the accept path)."""
    return {"id": new_id(), "org_id": org_id, "app_id": app_id,
            "api_token_id": api_token.token_id, "kind": kind, "user_id": user_id,
            "token_kind": token_kind, "token": token, "web_keys": web_keys}


REGISTRATION_PROCESS: Task[ProcessRequests] = Task(
    "registration.process", ProcessRequests.encode, ProcessRequests.decode)


@dataclass(frozen=True, slots=True)
class Callback:
    url: str
    headers: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class StatusEntry:
    request_id: str
    status: Status
    failure_reason: str | None


class Registration:
    def __init__(self, db: Database, writer: GroupCommitWriter, tokens: ApiTokenCache,
                 clock: Clock, settings: Settings) -> None:
        self._db = db
        self._writer = writer
        self._tokens = tokens
        self._clock = clock
        self._settings = settings

    async def _verify(self, org_id: str, pairs: Iterable[tuple[str, str]]
                      ) -> dict[tuple[str, str], ApiTokenInfo]:
        found: dict[tuple[str, str], ApiTokenInfo] = {}
        for app_id, token in set(pairs):
            info = await self._tokens.verify(org_id=org_id, app_id=app_id, token=token)
            if info is None:
                # Nothing is stored for a request with a bad token (CIJ: "leaves no trace").
                raise InvalidInput(
                    f"ApiToken is not valid for MobileAppId {app_id} in organization {org_id}",
                    fix="Use an API token from the app's developer information (`clarion apps "
                    "developer-info`), check MobileAppId and the organization id in the URL, "
                    "and make sure the token was not revoked.",
                    field="ApiToken", code="ApiTokenNotValid",
                )
            found[(app_id, token)] = info
        return found

    async def accept_devices(self, org_id: str, requests: Sequence[DeviceRequest], *,
                             tracked: bool, callback: Callback | None) -> list[str]:
        """Commit registration requests (group commit) and return their ids (in request
        order)."""
        tokens = await self._verify(org_id, ((r.mobile_app_id, r.api_token) for r in requests))
        if callback is not None:
            check_url(callback.url, allow_private=self._settings.webhook_allow_private)
        if not tracked and callback is None:
            items = [_inline(org_id, r.mobile_app_id, tokens[(r.mobile_app_id, r.api_token)],
                             "register", r.user_id, token_kind=r.token_kind.value,
                             token=r.token, web_keys=r.web_keys) for r in requests]
            await self._writer.submit([], batch=REGISTRATION_PROCESS.batch(items))
            return [item["id"] for item in items]
        now = self._clock.now()
        rows: list[dict[str, Any]] = [{
            "id": new_id(), "org_id": org_id, "app_id": r.mobile_app_id,
            "api_token_id": tokens[(r.mobile_app_id, r.api_token)].token_id,
            "kind": "register", "user_id": r.user_id, "token_kind": r.token_kind.value,
            "token": r.token, "web_keys": r.web_keys, "tracked": tracked,
            "callback_url": callback.url if callback else None,
            "callback_headers": callback.headers if callback else None,
            "callback_signature": hmac_sha256_b64(r.api_token, callback.url)
            if callback else None,
            "status": Status.PENDING.value, "failure_reason": None, "detail": None,
            "created_at": now, "finished_at": None,
        } for r in requests]
        ids = [row["id"] for row in rows]
        await self._writer.submit([(store.TABLE, rows)],
                                  batch=REGISTRATION_PROCESS.batch(ids))
        return ids

    async def accept_cleanups(self, org_id: str,
                              requests: Sequence[CleanupRequest]) -> list[str]:
        tokens = await self._verify(org_id, ((r.mobile_app_id, r.api_token) for r in requests))
        items = [_inline(org_id, r.mobile_app_id, tokens[(r.mobile_app_id, r.api_token)],
                         "cleanup", r.user_id, token=r.device_token) for r in requests]
        await self._writer.submit([], batch=REGISTRATION_PROCESS.batch(items))
        return [item["id"] for item in items]

    async def statuses(self, org_id: str, app_id: str, api_token: str,
                       request_ids: Sequence[str]) -> list[StatusEntry]:
        """Status per id, in the order asked. An id Clarion does not know (never tracked,
        another app's, or purged after the retention period) reads ``Pending``, as in CIJ."""
        await self._verify(org_id, [(app_id, api_token)])
        async with self._db.read() as conn:
            rows = await store.tracked_statuses(conn, org_id, app_id, request_ids)
        known = {r.id: r for r in rows}
        out = []
        for rid in request_ids:
            row = known.get(rid)
            if row is None:
                out.append(StatusEntry(rid, Status.PENDING, None))
            else:
                out.append(StatusEntry(rid, Status(row.status), row.failure_reason))
        return out

    async def purge_finished(self) -> int:
        """Forget finished tracked requests older than the retention period."""
        before = self._clock.now() - timedelta(
            days=self._settings.registration_status_retention_days)
        async with self._db.write() as conn:
            return await store.purge_finished(conn, before)
