"""Wire schemas of ``/v1/orgs/{org_id}/journeys``.

The request model documents the journey document for the API reference but lets any JSON
through: the document's rules (``clarion.domain.journeys``) name the step id and the field of
every problem, which a bare 422 could not.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from clarion.domain.journeys.records import JourneyRead as Domain

EXAMPLE: dict[str, Any] = {
    "name": "Welcome series", "app_id": "<app id>",
    "entry": {"type": "segment", "segment_id": "<segment id>", "schedule": {"kind": "once"}},
    "steps": [
        {"id": "hello", "type": "push", "message_id": "<message id>"},
        {"id": "opened", "type": "wait_for_interaction", "step": "hello",
         "interaction": "opened", "within": "PT8S", "yes": "tier", "no": "nudge"},
        {"id": "nudge", "type": "push", "message_id": "<second message id>", "next": "end"},
        {"id": "tier", "type": "branch",
         "branches": [{"when": "tier eq 'gold'", "next": "perks"}], "otherwise": "end"},
        {"id": "perks", "type": "push", "message_id": "<third message id>"}],
    "reentry": "never"}


class JourneyDocument(BaseModel):
    """A journey document (docs/journeys.md describes every field)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [EXAMPLE]})

    name: Any = Field(None, description="Up to 200 characters.")
    app_id: Any = Field(None, description="The app whose devices the push steps reach.")
    entry: Any = Field(None, description="`{\"type\": \"segment\", \"segment_id\", \"schedule\": "
                       "{\"kind\": \"once\" | \"once_then_new\" | \"repeat\", \"every\"?}}`, "
                       "`{\"type\": \"trigger\", \"trigger\", \"when\"?}` or `{\"type\": "
                       "\"interaction\", \"interaction\", \"message_id\" | \"journey_id\" + "
                       "\"step\"}`.")
    steps: Any = Field(None, description="push, wait, wait_for_interaction, branch, split, "
                       "end; run in list order unless a step names its `next` (`end` ends).")
    exclude_segment_ids: Any = Field(None, description="People in these segments never enter.")
    entry_limit_per_hour: Any = Field(None, description="At most this many people enter per "
                                      "hour.")
    exit_triggers: Any = Field(None, description="Trigger names (or `{\"trigger\", \"when\"}`) "
                               "that take a person out of the journey.")
    goal: Any = Field(None, description="`{\"trigger\", \"target_share\" (percent), "
                      "\"when\"?}`.")
    reentry: Any = Field(None, description="`never` (default), `after_exit` or `always`.")

    def document(self) -> dict[str, Any]:
        out = self.model_dump(exclude_unset=True)
        out.update(self.model_extra or {})
        return out


class JourneyRead(BaseModel):
    id: str
    app_id: str
    name: str
    state: str = Field(description="draft | live | paused | stopped")
    version: int = Field(description="The newest document's version.")
    live_version: int | None = Field(description="The version people enter now.")
    document: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None

    @classmethod
    def of(cls, j: Domain) -> JourneyRead:
        return cls(id=j.id, app_id=j.app_id, name=j.name, state=j.state, version=j.version,
                   live_version=j.live_version, document=j.document, created_at=j.created_at,
                   updated_at=j.updated_at, started_at=j.started_at, stopped_at=j.stopped_at)


class ProblemRead(BaseModel):
    step: str | None = Field(None, description="The step's id, when inside a step.")
    field: str = Field(description="The field's path (inside the step when `step` is set).")
    message: str


class ValidationRead(BaseModel):
    valid: bool
    errors: list[ProblemRead]


class StepCountsRead(BaseModel):
    id: str
    type: str
    inflow: int = Field(description="Visits of the step (processing + processed + exit).")
    processing: int = Field(description="People at the step now.")
    processed: int = Field(description="Visits that went on (or ended the journey there).")
    exit: int = Field(description="People who left the journey at the step.")
    exit_reasons: dict[str, int]
    variants: dict[str, int] | None = Field(None, description="A/B push steps: people per "
                                            "variant.")
    channel: dict[str, Any] | None = Field(
        None, description="Push steps: the step's channel figures (sent, not sent by reason, "
        "delivered, opened, clicked, rates), as the report of scope journey_step gives them.")
    ab: dict[str, Any] | None = Field(
        None, description="A/B push steps: per variant (a, b) its message_id, people, "
        "sent_people, <metric>_people, rate and channel figures; the metric, the winner (null "
        "while the test runs) and the confidence so far.")
    held: int | None = Field(None, description="Push steps: people whose push waits for the "
                             "end of their quiet time.")


class GoalRead(BaseModel):
    met: int
    share: float
    target_share: float
    reached: bool


class JourneyReportRead(BaseModel):
    journey_id: str
    version: int
    state: str
    people: int
    inside: int
    held: int = Field(0, description="People whose push of a step waits for the end of their "
                      "quiet time.")
    goal: GoalRead | None
    steps: list[StepCountsRead]
