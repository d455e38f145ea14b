"""The compliance screen applied to a fan-out page: who gets the push now, who waits, who not.

Fan-out (``clarion.services.fanout``) calls this for the people of a page who have a device,
only when the org has compliance rules (an org without any pays one primary-key read per page).
The rules and their order are ``clarion.domain.compliance.screen``; here they meet the rows:

* ``screen`` (a read): expiry, consent, quiet time per person, with the people's time zones and
  fields, and their consent, read in one statement each for the whole page.
* ``cap`` (inside the write transaction that creates the deliveries): locks the people's rows
  (PostgreSQL), counts their recent commercial pushes from the ledger, blocks those over the cap
  and records the others, so no two workers can both send the push that crosses a cap.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache

from clarion.domain.compliance.caps import FrequencyCap, caps_from_document
from clarion.domain.compliance.quiet_times import (
    Category,
    QuietProfile,
    profile_from_document,
    zone_for,
)
from clarion.domain.compliance.screen import Decision, Screen, Verdict, decide
from clarion.store import compliance as store
from clarion.store.db import Conn
from clarion.store.sends import SendRow

CHANNEL = "push"


@dataclass(frozen=True, slots=True)
class OrgRules:
    profile: QuietProfile | None
    cap: FrequencyCap | None
    require_consent: bool
    time_zone: str | None
    opt_outs: bool = False
    cap_excluded: bool = False  # a journey excluded from the cap: not capped, still counted

    @staticmethod
    def of(row: store.ComplianceRow) -> OrgRules:
        caps = caps_from_document(row.frequency_caps) if row.frequency_caps else {}
        cap = caps.get(CHANNEL)
        return OrgRules(profile_from_document(row.quiet_times) if row.quiet_times else None,
                        cap if cap is not None and cap.limits else None,
                        row.require_consent, row.time_zone, row.opt_outs)

    def applies(self, category: Category) -> bool:
        if category is Category.COMMERCIAL:
            return (self.profile is not None or self.cap is not None
                    or self.require_consent or self.opt_outs)
        return self.profile is not None  # transactional: only its own quiet rules


@dataclass(slots=True)
class Screened:
    now: list[str] = field(default_factory=list)  # may leave now (caps still to check)
    held: dict[str, datetime] = field(default_factory=dict)  # person → release instant
    blocked: dict[str, str] = field(default_factory=dict)  # person → reason


def category_of(send: SendRow) -> Category:
    return Category(send.category)


async def rules_of(conn: Conn, org_id: str) -> OrgRules | None:
    row = await store.settings(conn, org_id)
    return None if row is None else OrgRules.of(row)


def for_send(rules: OrgRules | None, send: SendRow) -> OrgRules | None:
    """The org's rules as this send applies them: a journey's quiet-time profile, else its
    stored message's, in place of the org's; a journey excluded from the frequency cap."""
    own = send.rules or {}
    template = send.message.get("template") if isinstance(send.message, dict) else None
    quiet = own.get("quiet_times") or (template.get("quiet_times")
                                       if isinstance(template, dict) else None)
    excluded = bool(own.get("cap_excluded"))
    if quiet is None and not excluded:
        return rules
    base = rules or OrgRules(None, None, False, None)
    profile = _profile(json.dumps(quiet, sort_keys=True)) if quiet else base.profile
    return replace(base, profile=profile, cap_excluded=excluded)


@lru_cache(maxsize=256)
def _profile(document: str) -> QuietProfile:
    """A profile document parsed once (checked when the journey or message was saved)."""
    return profile_from_document(json.loads(document))


async def screen(conn: Conn, rules: OrgRules, send: SendRow, people: Sequence[str],
                 now: datetime, *, facts: Mapping[str, store.PersonFacts] | None = None
                 ) -> Screened:
    """Expiry, consent and quiet time for ``people`` (the cap comes later, in ``cap``).
    ``facts``: the people's facts when the caller has read them already."""
    category = category_of(send)
    out = Screened()
    if not people:
        return out
    if rules.profile is None:
        facts = {}
    elif facts is None:
        facts = await store.people_facts(conn, send.org_id, people)
    consents = (await store.consents(conn, send.app_id, people)
                if (rules.require_consent or rules.opt_outs)
                and category is Category.COMMERCIAL else {})
    profile = rules.profile
    general = profile.general.of(category) if profile is not None else _NO_QUIET
    by_fields = profile is not None and bool(profile.advanced)
    # The verdict depends only on (rules, zone, consent) here: most people of a page share
    # them, so each distinct combination is decided once.
    decided: dict[tuple[int, str | None, bool | None], Decision] = {}
    for person in people:
        fact = facts.get(person)
        quiet = (profile.rules_for(fact.fields() if fact else {}, category)
                 if by_fields and profile is not None else general)
        named = fact.time_zone if fact else None
        consented = consents.get(person)
        key = (id(quiet), named, consented)
        decision = decided.get(key)
        if decision is None:
            zone = zone_for(named, rules.time_zone) if profile is not None else _UTC
            decision = decided[key] = decide(
                Screen(category, quiet, zone, consent_required=rules.require_consent,
                       consented=consented, deadline=send.expires_at), now)
        if decision.verdict is Verdict.SEND:
            out.now.append(person)
        elif decision.verdict is Verdict.HOLD:
            assert decision.until is not None
            out.held[person] = decision.until
        else:
            out.blocked[person] = str(decision.reason)
    return out


async def cap(conn: Conn, rules: OrgRules, send: SendRow, people: Sequence[str],
              now: datetime) -> tuple[list[str], list[str]]:
    """(those of ``people`` who may have the push, those the cap blocks); records the ledger
    for the first. Call inside the write transaction that creates their deliveries."""
    if (rules.cap is None or category_of(send) is not Category.COMMERCIAL or not people):
        return list(people), []
    if rules.cap_excluded:  # not capped, but counted against the person's other pushes
        await store.record_sent(conn, send.org_id, send.id, CHANNEL, people, now)
        return list(people), []
    longest = rules.cap.longest
    assert longest is not None
    await store.lock_people(conn, send.org_id, people)
    recent = await store.recent_sends(conn, send.org_id, people, CHANNEL, now - longest)
    allowed: list[str] = []
    blocked: list[str] = []
    fewest = min(rules.cap.limits.values())  # fewer recent pushes than this: under every cap
    for person in people:
        sent = recent.get(person, ())
        full = rules.cap.full_window(sent, now) if len(sent) >= fewest else None
        (allowed if full is None else blocked).append(person)
    # A page's deliveries and its ledger rows commit together (a page committed is never run
    # again: clarion.services.fanout), so nobody is recorded twice.
    await store.record_sent(conn, send.org_id, send.id, CHANNEL, allowed, now)
    return allowed, blocked


_NO_QUIET = profile_from_document({"name": "none"}).general.commercial
_UTC = zone_for("UTC")
