"""Wire shapes of reports and timelines (``/v1/orgs/{org_id}/reports``, ``…/timeline``).

The report route answers with ``clarion.domain.reports.Report.as_dict()`` directly (a year of
daily buckets is thousands of nested objects: validating them again costs more than the
query); these models document that shape in OpenAPI, and the integration tests check every
answer against them (``extra="forbid"``), so the two cannot drift apart. Figures are defined
in docs/reports.md.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from clarion.domain.timeline import TimelineEntry


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SentRead(_Strict):
    people: int = Field(description="People with at least one device that accepted the send.")
    devices: int = Field(description="Devices whose provider accepted the notification.")


class ReasonsRead(_Strict):
    total: int
    by_reason: dict[str, int]


class NotSentRead(_Strict):
    people: ReasonsRead = Field(description="Person-level: no_valid_device.")
    devices: ReasonsRead = Field(description="Device-level: invalid_token, mismatch, rejected, "
                                 "credential_error, expired.")


class InteractionRead(_Strict):
    events: int = Field(description="Every report of this kind.")
    unique_devices: int = Field(description="Devices (deliveries) with at least one.")
    unique_people: int = Field(description="People with at least one, counted once per send.")


class RatesRead(_Strict):
    send_rate: float | None = Field(description="sent people / inflow")
    delivery_rate: float | None = Field(description="unique delivered devices / sent devices")
    open_rate: float | None = Field(description="unique opened people / sent people")
    click_through_rate: float | None = Field(description="unique clicked people / sent people")
    click_to_open_rate: float | None = Field(
        description="unique clicked people / unique opened people")
    engagement_rate: float | None = Field(
        description="unique people who opened or clicked / sent people")


class FiguresRead(_Strict):
    inflow: int = Field(description="People who entered the send(s).")
    sent: SentRead
    targeted_devices: int = Field(description="Devices a notification was addressed to.")
    not_sent: NotSentRead
    blocked: ReasonsRead = Field(description="People a compliance rule kept the push from: "
                                 "frequency_cap, no_consent, expired (docs/compliance.md).")
    held: ReasonsRead = Field(description="People whose push waited for the end of their "
                              "quiet time (then sent, or blocked at release).")
    delivered: InteractionRead
    opened: InteractionRead
    clicked: InteractionRead
    dismissed: InteractionRead
    engaged_people: int = Field(description="People who opened or clicked (once per send).")


class TotalsRead(FiguresRead):
    rates: RatesRead = Field(description="Null where the denominator is zero, or where the "
                             "rate's inputs were not reported (listed in rates_not_reported).")
    rates_not_reported: list[str] = Field(
        description="Rates that are null because no app reported their inputs in the range "
        "(no delivered report for delivery_rate, no open for open_rate, no click for the "
        "click rates, neither for engagement_rate): unknown, not 0 %.")


class BucketRead(FiguresRead):
    start: datetime = Field(description="First instant of the hour or UTC day.")
    platforms: dict[str, FiguresRead] | None = Field(
        None, description="With by_platform: the bucket split by platform.")


class ReportRead(_Strict):
    org_id: str
    scope: str
    scope_id: str | None
    since: datetime = Field(description="Start of the range covered (widened to whole buckets).")
    until: datetime = Field(description="End of the range covered (exclusive).")
    granularity: str
    by_platform: bool
    totals: TotalsRead
    platforms: dict[str, TotalsRead] = Field(
        description="With by_platform: ios, android, web, and `none` for person-level facts.")
    series: list[BucketRead] = Field(description="Every bucket of the range, zero-filled.")


class TimelinePage(_Strict):
    items: list[TimelineEntry] = Field(description="Newest first.")
    next_before: datetime | None = Field(
        description="Pass as `before` for older entries; null when there are none.")
