"""The compliance screen: what happens to one person's push, decided in a fixed order.

Evaluated when a push is about to leave (at fan-out, and again when a held push is released):

1. **Expiry**: past the message's TTL or the journey step's "send before" deadline → *skipped*,
   reason ``expired``.
2. **Consent** (commercial only): an opt-out, or when the org requires consent no opt-in →
   *blocked*, reason ``no_consent``. An explicit opt-out is honoured even where consent is
   not required.
3. **Quiet time** (the category's rules, in the person's zone): inside → *held* until it ends;
   when that end is past the deadline → *skipped*, ``expired``.
4. **Frequency cap** (commercial only, unless the journey is excluded): a full window →
   *blocked*, reason ``frequency_cap``. Checked at release too, so a held push cannot cross a
   cap that filled while it waited.
5. Otherwise it is *sent*.

Transactional pushes skip 2 and 4 and use the transactional quiet rules (usually none).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from enum import StrEnum

from clarion.domain.compliance.caps import FrequencyCap
from clarion.domain.compliance.quiet_times import Category, QuietRules, quiet_until


class Verdict(StrEnum):
    SEND = "send"
    HOLD = "hold"
    BLOCK = "block"
    SKIP = "skip"


class Reason(StrEnum):
    EXPIRED = "expired"
    NO_CONSENT = "no_consent"
    QUIET_TIME = "quiet_time"
    FREQUENCY_CAP = "frequency_cap"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: Reason | None = None
    until: datetime | None = None  # HOLD: when the quiet time ends (UTC)
    window: str | None = None  # BLOCK by cap: the full window (per_24h…)


SEND = Decision(Verdict.SEND)


@dataclass(frozen=True, slots=True)
class Screen:
    """Everything the rules need about one push to one person."""

    category: Category
    quiet: QuietRules
    zone: tzinfo
    cap: FrequencyCap | None = None
    cap_excluded: bool = False  # the journey is excluded from the frequency cap
    consent_required: bool = False
    consented: bool | None = None  # True opted in, False opted out, None never said
    deadline: datetime | None = None  # TTL / "send before"


def decide(screen: Screen, now: datetime, sent_at: Iterable[datetime] = ()) -> Decision:
    """The verdict for a push at ``now``; ``sent_at``: this person's commercial pushes that
    left within the cap's longest window."""
    if screen.deadline is not None and now >= screen.deadline:
        return Decision(Verdict.SKIP, Reason.EXPIRED)
    commercial = screen.category is Category.COMMERCIAL
    if commercial and (screen.consented is False
                       or (screen.consent_required and screen.consented is not True)):
        return Decision(Verdict.BLOCK, Reason.NO_CONSENT)
    release = quiet_until(screen.quiet, screen.zone, now)
    if release is not None:
        if screen.deadline is not None and release >= screen.deadline:
            return Decision(Verdict.SKIP, Reason.EXPIRED)
        return Decision(Verdict.HOLD, Reason.QUIET_TIME, until=release)
    if commercial and screen.cap is not None and not screen.cap_excluded:
        full = screen.cap.full_window(sent_at, now)
        if full is not None:
            return Decision(Verdict.BLOCK, Reason.FREQUENCY_CAP, window=full)
    return SEND
