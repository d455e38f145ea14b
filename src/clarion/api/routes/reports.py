"""Reports (JSON or CSV) and a person's timeline, for the org's admin token."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from clarion.api.deps import AdminOrg, ReportsDep
from clarion.api.intake import CheckedRoute
from clarion.api.responses import JSON
from clarion.api.schemas.errors import ADMIN_ERRORS
from clarion.api.schemas.reports import ReportRead, TimelinePage
from clarion.domain.report_csv import report_csv
from clarion.domain.report_range import Granularity
from clarion.domain.reports import Scope
from clarion.services.reports import MAX_TIMELINE

router = APIRouter(prefix="/v1/orgs/{org_id}", tags=["reports"],
                   route_class=CheckedRoute, responses=ADMIN_ERRORS)

_SINCE = ("Start (ISO 8601; without an offset, UTC). Default: 24 hours (hourly) or 7 days "
          "(daily) before `until`. Widened to whole hours / UTC days.")


@router.get("/reports", response_model=ReportRead, responses={200: {
    "content": {"text/csv": {"schema": {"type": "string"}}},
    "description": "The report (JSON), or with format=csv one row per period and platform."}})
async def get_report(
    org_id: AdminOrg, reports: ReportsDep,
    scope: Annotated[Scope, Query(description="What to report on.")] = "org",
    id: Annotated[str | None, Query(
        max_length=140, description="The app, send, journey, message id; a journey step "
        "as <journey id>/<step id>. Not with scope=org.")] = None,
    since: Annotated[datetime | None, Query(description=_SINCE)] = None,
    until: Annotated[datetime | None, Query(description="End, exclusive. Default: now.")] = None,
    granularity: Annotated[Granularity, Query(
        description="Series buckets: hour (≤ 31 days) or day (UTC, ≤ 400 days).")] = "day",
    by_platform: Annotated[bool, Query(description="Split by platform too.")] = False,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    """Sent, not sent, blocked, delivered, opened, clicked, unique people and devices, and the
    CIJ rates (defined in docs/reports.md) over a range, with an hourly or daily series."""
    report = await reports.report(
        org_id, scope=scope, scope_id=id, since=since, until=until,
        granularity=granularity, by_platform=by_platform)
    if format == "csv":
        name = f"clarion-{scope}-{report.since:%Y%m%dT%H}-{report.until:%Y%m%dT%H}.csv"
        return Response(report_csv(report), media_type="text/csv; charset=utf-8",
                         headers={"content-disposition": f'attachment; filename="{name}"'})
    return JSON(report.as_dict())


@router.get("/people/{person_id}/timeline")
async def get_timeline(
    org_id: AdminOrg, reports: ReportsDep, person_id: str,
    limit: Annotated[int, Query(ge=1, le=MAX_TIMELINE)] = 100,
    before: Annotated[datetime | None, Query(
        description="Only entries strictly older (next_before of the previous page).")] = None,
) -> TimelinePage:
    """Every send to the person (with each device's outcome) and every interaction, newest
    first."""
    items = await reports.timeline(org_id, person_id, limit=limit, before=before)
    return TimelinePage(items=items,
                        next_before=items[-1].at if len(items) >= limit else None)
