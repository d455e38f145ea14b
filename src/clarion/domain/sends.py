"""Sends: one message to every currently valid device of one or more people for one app.

``SendCreate`` is the command (validated once, by the API or by whoever builds it); ``SendRead``
and ``DeliveryRead`` are what a send looks like afterwards. A send *succeeded* as soon as one
device accepted it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from clarion.domain.messages import MessageIn
from clarion.errors import InvalidInput

MAX_USERS_PER_SEND = 100_000
FINAL_STATES = ("accepted", "invalid_token", "mismatch", "rejected", "expired")


class SendCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    app_id: str | None = Field(None, max_length=64, description="The app (required with an "
                               "inline message; with message_id, the message's app).")
    user_id: str | None = Field(None, description="One person (contact, lead or profile).")
    user_ids: list[str] | None = Field(None, description="Or several people (up to 100,000).")
    segment_id: str | None = Field(
        None, max_length=64, description="Or everyone in a segment (/v1/orgs/{org}/segments), "
        "any number of people: fan-out reads the members page by page as it goes.")
    message: MessageIn | None = Field(None, description="An inline message, the same for "
                                      "everyone; or give message_id.")
    message_id: str | None = Field(None, max_length=64, description="A stored push message "
                                   "(/v1/orgs/{org}/messages), personalised for each person.")
    trigger_data: dict[str, Any] | None = Field(
        None, max_length=100, description="With message_id: the values of placeholders whose "
        "source is trigger (strings, numbers, booleans).")
    category: Literal["commercial", "transactional"] | None = Field(
        None, description="Which compliance rules apply: commercial pushes obey quiet times, "
        "frequency caps and consent; transactional ones only their own quiet times "
        "(docs/compliance.md). Default: the stored message's category with message_id, "
        "else commercial.")

    @model_validator(mode="after")
    def _one_audience(self) -> SendCreate:
        given = [self.user_id, self.user_ids, self.segment_id]
        if sum(v is not None for v in given) != 1:
            raise InvalidInput("give exactly one of user_id, user_ids or segment_id",
                               field="user_id", fix="Send to one person with user_id, to "
                               "several with user_ids, or to everyone in a segment with "
                               "segment_id.")
        if self.user_ids is not None and not 0 < len(self.user_ids) <= MAX_USERS_PER_SEND:
            raise InvalidInput(f"user_ids must be 1 to {MAX_USERS_PER_SEND} person ids",
                               field="user_ids",
                               fix="Split larger audiences into several sends.")
        if (self.message is None) == (self.message_id is None):
            raise InvalidInput("give exactly one of message or message_id", field="message",
                               fix="Send an inline message, or the id of a stored push "
                               "message (personalised per person).")
        if self.message is not None and self.app_id is None:
            raise InvalidInput("app_id is required with an inline message", field="app_id",
                               fix="Give the id of the app to send through.")
        if self.trigger_data is not None:
            if self.message_id is None:
                raise InvalidInput("trigger_data goes with message_id", field="trigger_data",
                                   fix="Remove trigger_data, or send a stored message.")
            bad = [k for k, v in self.trigger_data.items()
                   if not isinstance(v, str | int | float | bool) and v is not None]
            if bad:
                raise InvalidInput(f"trigger_data.{bad[0]} must be a string, number, boolean "
                                   "or null", field=f"trigger_data.{bad[0]}",
                                   fix="Flatten the value to a scalar.")
        return self

    @property
    def audience(self) -> list[str]:
        """The people given, in the order given (none for a segment send)."""
        return [self.user_id] if self.user_id is not None else self.user_ids or []


@dataclass(frozen=True, slots=True)
class SendRules:
    """Compliance a send carries besides the org's (docs/compliance.md): a journey's
    quiet-time profile in place of the org's and the message's, the journey's exclusion from
    the frequency cap (its pushes are not capped; they still count), and a journey step's
    "send before" deadline (a push that cannot leave before it is skipped: ``expired``)."""

    quiet_times: Mapping[str, Any] | None = None
    cap_excluded: bool = False
    send_before: timedelta | None = None

    def stored(self) -> dict[str, Any] | None:
        """What the send row keeps (the deadline is its ``expires_at``)."""
        out: dict[str, Any] = {}
        if self.quiet_times is not None:
            out["quiet_times"] = dict(self.quiet_times)
        if self.cap_excluded:
            out["cap_excluded"] = True
        return out or None


@dataclass(frozen=True, slots=True)
class DeliveryRead:
    id: str
    person_id: str
    device_id: str
    platform: str
    state: str
    reason: str | None
    detail: str | None
    provider_id: str | None
    attempts: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Waiting:
    """Pending deliveries of a send that were tried and wait for a retry, for one platform and
    one reason: why a send is not done yet (a provider unreachable, a certificate not trusted,
    an app's credentials refused...)."""

    platform: str
    reason: str
    deliveries: int
    detail: str | None  # one of theirs: they differ at most in incidental words


@dataclass(frozen=True, slots=True)
class SendRead:
    id: str
    app_id: str
    user_ids: list[str]
    message: dict[str, Any]
    state: Annotated[str, Field(description="queued, fanning_out, sending or done")]
    created_at: datetime
    expires_at: datetime
    counts: Annotated[dict[str, int], Field(description="Deliveries per state.")]
    succeeded: Annotated[bool | None, Field(
        description="True once a device accepted it; false when done with none; null before.")]
    deliveries: list[DeliveryRead]
    waiting: Annotated[list[Waiting], Field(
        description="Pending deliveries that were tried and wait for a retry, per platform and "
        "reason, most first: why the send is not done yet.")]
    category: Annotated[str, Field(description="commercial or transactional")] = "commercial"
    held: Annotated[int, Field(
        description="People whose push waits for the end of their quiet time.")] = 0
    blocked: Annotated[dict[str, int], Field(
        description="People a compliance rule kept the push from, by reason (frequency_cap, "
        "no_consent, expired).")] = field(default_factory=dict)
    segment_id: Annotated[str | None, Field(
        description="The segment of a segment send (its user_ids are then empty: see "
        "people).")] = None
    people: Annotated[int, Field(
        description="The audience's size: the people given, or the members of the segment "
        "that fan-out has reached so far.")] = 0


def describe_waiting(waiting: list[Waiting]) -> str:
    """``3 deliveries waiting to retry: ios TLSError (the APNs server's certificate is not
    trusted …)``: the reasons, most frequent first, each with its count when there are
    several and one detail."""
    total = sum(w.deliveries for w in waiting)
    parts = [(f"{w.deliveries} × " if len(waiting) > 1 else "") + f"{w.platform} {w.reason}"
             + (f" ({w.detail})" if w.detail else "") for w in waiting]
    return (f"{total} deliver{'y' if total == 1 else 'ies'} waiting to retry: "
            + "; ".join(parts))


def send_state(fanout_state: str, pending: int, held: int = 0) -> str:
    """What a reader is told: ``queued``/``fanning_out`` while expanding, then ``sending``
    while a delivery is pending, ``held`` while people wait for the end of their quiet time,
    then ``done``."""
    if fanout_state in ("queued", "fanning_out"):
        return fanout_state
    if pending:
        return "sending"
    return "held" if held else "done"


def succeeded(fanout_state: str, counts: dict[str, int]) -> bool | None:
    if counts.get("accepted", 0):
        return True
    if fanout_state == "fanned_out" and not counts.get("pending", 0):
        return False
    return None


@dataclass(frozen=True, slots=True)
class PushOutcomeEvent:
    """What a push did for one person, as subscribers of in-service events see it (topic
    ``push.sent``: the first of their devices accepted it; ``push.not_sent``: no valid
    device, the message could not be personalised, or their only device refused it, with
    ``reason``). Dedupe key: (send_id, person_id, outcome)."""

    org_id: str
    app_id: str
    send_id: str
    person_id: str
    message_id: str | None
    journey_id: str | None
    journey_step_id: str | None
    outcome: Literal["sent", "not_sent"]
    reason: str | None = None

    @property
    def topic(self) -> str:
        return f"push.{self.outcome}"
