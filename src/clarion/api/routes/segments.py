"""Segments: dynamic filters over people, static member lists, size previews and member pages
(``/v1/orgs/{org_id}/segments``)."""

from __future__ import annotations

import io
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from clarion.api.deps import AdminOrg, SegmentsDep
from clarion.api.intake import CheckedRoute
from clarion.api.schemas.errors import ADMIN_ERRORS, error
from clarion.api.schemas.segments import (
    ImportResult,
    MemberPage,
    SegmentCreate,
    SegmentPage,
    SegmentRead,
    SegmentSize,
    SegmentUpdate,
)
from clarion.domain.text import loads
from clarion.errors import InvalidInput
from clarion.services.importing import UnreadableRow, iter_csv, iter_jsonl

router = APIRouter(prefix="/v1/orgs/{org_id}/segments", tags=["segments"],
                   route_class=CheckedRoute, responses=ADMIN_ERRORS)


@router.post("", status_code=201)
async def create_segment(org_id: AdminOrg, segments: SegmentsDep,
                         body: SegmentCreate) -> SegmentRead:
    """A dynamic segment (`filter`) or a static one (`"kind": "static"`, then import members)."""
    return await segments.create(org_id, body.model_dump(exclude_none=True))


@router.get("")
async def list_segments(
    org_id: AdminOrg, segments: SegmentsDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
) -> SegmentPage:
    items = await segments.all(org_id, after=cursor, limit=limit + 1)
    page = items[:limit]
    return SegmentPage(page, page[-1].id if len(items) > limit else None)


@router.get("/{segment_id}")
async def get_segment(org_id: AdminOrg, segments: SegmentsDep, segment_id: str) -> SegmentRead:
    return await segments.get(org_id, segment_id)


@router.put("/{segment_id}")
async def replace_segment(org_id: AdminOrg, segments: SegmentsDep, segment_id: str,
                          body: SegmentUpdate) -> SegmentRead:
    return await segments.replace(org_id, segment_id, body.model_dump(exclude_none=True))


@router.delete("/{segment_id}", status_code=204,
               responses={409: error("Another segment uses this one (in_segment).")})
async def delete_segment(org_id: AdminOrg, segments: SegmentsDep, segment_id: str) -> Response:
    await segments.delete(org_id, segment_id)
    return Response(status_code=204)


@router.get("/{segment_id}/size")
async def segment_size(org_id: AdminOrg, segments: SegmentsDep, segment_id: str) -> SegmentSize:
    """How many people the segment holds now, and a sample of them."""
    return await segments.size(org_id, segment_id)


@router.get("/{segment_id}/preview", include_in_schema=False)
async def segment_preview(org_id: AdminOrg, segments: SegmentsDep,
                          segment_id: str) -> SegmentSize:
    return await segments.size(org_id, segment_id)


@router.get("/{segment_id}/members")
async def segment_members(
    org_id: AdminOrg, segments: SegmentsDep, segment_id: str,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
) -> MemberPage:
    """Members in ascending id order, a page at a time."""
    items = await segments.members(org_id, segment_id, cursor, limit + 1)
    page = items[:limit]
    return MemberPage(page, page[-1] if len(items) > limit else None)


MEMBERS_JSON = {"type": "object", "properties": {
    "user_ids": {"type": "array", "items": {"type": "string"}},
    "emails": {"type": "array", "items": {"type": "string"}}}}


@router.post("/{segment_id}/members", openapi_extra={"requestBody": {"content": {
    "application/json": {"schema": MEMBERS_JSON},
    "text/csv": {"schema": {"type": "string"}},
    "application/x-ndjson": {"schema": {"type": "string"}}}}})
async def import_members(org_id: AdminOrg, segments: SegmentsDep, segment_id: str,
                         request: Request) -> ImportResult:
    """Add people to a static segment: JSON `{"user_ids": [...], "emails": [...]}`, CSV
    (`text/csv`, a header line with an `id`/`user_id`/`contactid` or `email` column) or JSON
    lines (`application/x-ndjson`, `{"user_id": …}` or `{"email": …}` per line)."""
    raw = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    rows: list[dict[str, Any]]
    if kind in ("text/csv", "application/x-ndjson", "application/jsonl"):
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"the body is not UTF-8 ({exc.reason})",
                               fix="Send the file as UTF-8.") from None
        found = (iter_csv(io.StringIO(text, newline="")) if kind == "text/csv"
                 else iter_jsonl(io.StringIO(text)))
        rows = []
        # The body is bounded (CLARION_ADMIN_MAX_BODY_BYTES): read whole, refused whole.
        for line, row in found:
            if isinstance(row, UnreadableRow):
                raise InvalidInput(f"line {line}: {row.reason}", fix="Fix that line; "
                                   "nothing was imported.")
            rows.append(row)
    else:  # JSON, whatever the content type says, as every other route with a body
        rows = _json_rows(loads(raw))
    return await segments.import_members(org_id, segment_id, rows)


def _json_rows(document: Any) -> list[dict[str, Any]]:
    fix = 'Send {"user_ids": ["<person id>", ...]} or {"emails": ["a@b.com", ...]}.'
    if not isinstance(document, dict) or not document.keys() <= {"user_ids", "emails"}:
        raise InvalidInput("the body must be an object with user_ids and/or emails", fix=fix)
    rows: list[dict[str, Any]] = []
    for key, column in (("user_ids", "user_id"), ("emails", "email")):
        values = document.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InvalidInput(f"{key} must be a list of strings", field=key, fix=fix)
        rows += [{column: value} for value in values]
    return rows
