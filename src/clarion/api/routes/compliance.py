"""Compliance: quiet times, frequency caps, the consent policy, and people's consent."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Response

from clarion.api.deps import AdminOrg, ComplianceDep
from clarion.api.intake import CheckedRoute
from clarion.api.schemas.compliance import (
    BlockedRead,
    CompliancePolicy,
    ComplianceRead,
    ConsentBatch,
    ConsentImportRead,
    ConsentRead,
    ConsentSet,
    FrequencyCaps,
)
from clarion.api.schemas.errors import ADMIN_ERRORS
from clarion.errors import NotFound
from clarion.services.compliance import blocked_csv

router = APIRouter(prefix="/v1/orgs/{org_id}", tags=["compliance"], route_class=CheckedRoute,
                   responses=ADMIN_ERRORS)


def _read(value: Any) -> ComplianceRead:
    return ComplianceRead.model_validate(asdict(value))


@router.get("/compliance")
async def get_compliance(org_id: AdminOrg, compliance: ComplianceDep) -> ComplianceRead:
    """Every compliance rule of the org."""
    return _read(await compliance.get(org_id))


@router.put("/compliance")
async def set_compliance_policy(org_id: AdminOrg, body: CompliancePolicy,
                                compliance: ComplianceDep) -> ComplianceRead:
    """The consent policy and the org's time zone (fields left out keep their value)."""
    return _read(await compliance.set_policy(org_id, require_consent=body.require_consent,
                                             time_zone=body.time_zone))


@router.get("/frequency-caps")
async def get_frequency_caps(org_id: AdminOrg, compliance: ComplianceDep) -> FrequencyCaps:
    return FrequencyCaps.model_validate((await compliance.get(org_id)).frequency_caps)


@router.put("/frequency-caps")
async def set_frequency_caps(org_id: AdminOrg, body: FrequencyCaps,
                             compliance: ComplianceDep) -> FrequencyCaps:
    """Caps per person on commercial pushes in rolling windows (null = no cap)."""
    saved = await compliance.set_frequency_caps(org_id, body.model_dump())
    return FrequencyCaps.model_validate(saved.frequency_caps)


@router.get("/quiet-times")
async def get_quiet_times(org_id: AdminOrg, compliance: ComplianceDep) -> dict[str, Any]:
    """The org's quiet-time profile document (docs/compliance.md)."""
    doc = (await compliance.get(org_id)).quiet_times
    if doc is None:
        raise NotFound("this organization has no quiet times",
                       fix=f"Set them with PUT /v1/orgs/{org_id}/quiet-times "
                       "(docs/compliance.md has examples).")
    return doc


@router.put("/quiet-times")
async def set_quiet_times(org_id: AdminOrg, compliance: ComplianceDep,
                          body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    """Set the org's quiet-time profile (general rules, advanced rules by person fields)."""
    saved = await compliance.set_quiet_times(org_id, body)
    return saved.quiet_times or {}


@router.delete("/quiet-times", status_code=204)
async def delete_quiet_times(org_id: AdminOrg, compliance: ComplianceDep) -> Response:
    await compliance.set_quiet_times(org_id, None)
    return Response(status_code=204)


@router.get("/apps/{app_id}/people/{user_id}/consent")
async def get_consent(org_id: AdminOrg, app_id: str, user_id: str,
                      compliance: ComplianceDep) -> ConsentRead:
    return ConsentRead.model_validate(asdict(await compliance.consent(org_id, app_id, user_id)))


@router.put("/apps/{app_id}/people/{user_id}/consent")
async def set_consent(org_id: AdminOrg, app_id: str, user_id: str, body: ConsentSet,
                      compliance: ComplianceDep) -> ConsentRead:
    """Record a person's opt-in or opt-out of an app's commercial push."""
    return ConsentRead.model_validate(asdict(await compliance.set_consent(
        org_id, app_id, user_id, opted_in=body.opted_in, source=body.source)))


@router.get("/sends/{send_id}/blocked", response_model=list[BlockedRead], responses={200: {
    "content": {"text/csv": {"schema": {"type": "string"}}},
    "description": "The people the rules kept the send from (JSON, or CSV with format=csv)."}})
async def get_blocked_recipients(
    org_id: AdminOrg, send_id: str, compliance: ComplianceDep,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> list[BlockedRead] | Response:
    """Every person the compliance rules blocked for this send, with the reason."""
    rows = await compliance.blocked_recipients(org_id, send_id)
    if format == "csv":
        return Response(blocked_csv(rows), media_type="text/csv; charset=utf-8", headers={
            "content-disposition": f'attachment; filename="clarion-blocked-{send_id}.csv"'})
    return [BlockedRead.model_validate(asdict(r)) for r in rows]


@router.post("/apps/{app_id}/consents")
async def import_consents(org_id: AdminOrg, app_id: str, body: ConsentBatch,
                          compliance: ComplianceDep) -> ConsentImportRead:
    """Record up to 1,000 people's choices (by user_id or email); a bad item is refused alone
    (listed with its index), the others are recorded."""
    rows = ((i, item.model_dump(exclude_none=True)) for i, item in enumerate(body.items))
    done = await compliance.import_consents(org_id, app_id, rows, source=body.source)
    return ConsentImportRead.model_validate({
        "imported": done.imported,
        "rejected": [{"index": i, "reason": why} for i, why in done.rejected]})
