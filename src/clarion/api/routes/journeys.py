"""Routes: journeys (documents, versions, life cycle, report).

Thin: parse, call one method of the ``Journeys`` service, serialise. Every route needs an
admin token of the org in the path.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from starlette.responses import Response

from clarion.api.deps import AdminOrg, JourneysDep
from clarion.api.intake import CheckedRoute
from clarion.api.responses import JSON
from clarion.api.schemas.errors import ADMIN_ERRORS, error
from clarion.api.schemas.journeys import (
    JourneyDocument,
    JourneyRead,
    JourneyReportRead,
    ProblemRead,
    ValidationRead,
)

router = APIRouter(prefix="/v1/orgs/{org_id}/journeys", tags=["journeys"],
                   route_class=CheckedRoute, responses=ADMIN_ERRORS)

_STATE_ERRORS: dict[int | str, dict[str, Any]] = {
    409: error("The journey's state does not allow this move (the message says why)."),
}


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_journey(org_id: AdminOrg, body: JourneyDocument,
                         journeys: JourneysDep) -> JourneyRead:
    """Create a journey (state draft, version 1). A document with problems is a 400 whose
    `problems` lists every one, each naming the step id and the field."""
    return JourneyRead.of(await journeys.create(org_id, body.document()))


@router.post("/validate")
async def validate_journey(org_id: AdminOrg, body: JourneyDocument,
                           journeys: JourneysDep) -> ValidationRead:
    """Check a document without storing it: every problem, or none."""
    problems = await journeys.validate(org_id, body.document())
    return ValidationRead(valid=not problems,
                          errors=[ProblemRead(**p.as_dict()) for p in problems])


@router.get("")
async def list_journeys(org_id: AdminOrg, journeys: JourneysDep) -> list[JourneyRead]:
    return [JourneyRead.of(j) for j in await journeys.of_org(org_id)]


@router.get("/{journey_id}")
async def get_journey(org_id: AdminOrg, journey_id: str, journeys: JourneysDep) -> JourneyRead:
    return JourneyRead.of(await journeys.get(org_id, journey_id))


@router.put("/{journey_id}", responses=_STATE_ERRORS)
async def update_journey(org_id: AdminOrg, journey_id: str, body: JourneyDocument,
                         journeys: JourneysDep) -> JourneyRead:
    """Replace the document. A draft is edited in place; a live or paused journey gains a
    version that people enter from now on (people inside finish theirs)."""
    return JourneyRead.of(await journeys.update(org_id, journey_id, body.document()))


@router.post("/{journey_id}/start", responses=_STATE_ERRORS)
async def start_journey(org_id: AdminOrg, journey_id: str,
                        journeys: JourneysDep) -> JourneyRead:
    """draft → live: people start entering."""
    return JourneyRead.of(await journeys.start(org_id, journey_id))


@router.post("/{journey_id}/pause", responses=_STATE_ERRORS)
async def pause_journey(org_id: AdminOrg, journey_id: str,
                        journeys: JourneysDep) -> JourneyRead:
    """live → paused: nobody enters or moves on until resumed."""
    return JourneyRead.of(await journeys.pause(org_id, journey_id))


@router.post("/{journey_id}/resume", responses=_STATE_ERRORS)
async def resume_journey(org_id: AdminOrg, journey_id: str,
                         journeys: JourneysDep) -> JourneyRead:
    """paused → live."""
    return JourneyRead.of(await journeys.resume(org_id, journey_id))


@router.post("/{journey_id}/stop", responses=_STATE_ERRORS)
async def stop_journey(org_id: AdminOrg, journey_id: str,
                       journeys: JourneysDep) -> JourneyRead:
    """live or paused → stopped, for good: everyone inside exits (`journey_stopped`)."""
    return JourneyRead.of(await journeys.stop(org_id, journey_id))


@router.get("/{journey_id}/report", response_model=JourneyReportRead, responses={200: {
    "content": {"text/csv": {"schema": {"type": "string"}}},
    "description": "The report (JSON), or with format=csv one row per step."}})
async def journey_report(
    org_id: AdminOrg, journey_id: str, journeys: JourneysDep,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    """Per step, in the document's order: inflow, processing, processed, exit (by reason),
    with `inflow = processing + processed + exit`; goal progress; A/B people per variant."""
    report = await journeys.report(org_id, journey_id)
    if format == "csv":
        return Response(report.csv(), media_type="text/csv; charset=utf-8", headers={
            "content-disposition": f'attachment; filename="clarion-journey-{journey_id}.csv"'})
    return JSON(report.as_dict())
