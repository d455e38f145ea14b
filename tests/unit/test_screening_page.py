"""The page screen (``services.screening.screen``) decides each distinct (rules, zone,
consent) once for a page: property test that its verdicts are, person by person, those of
``domain.compliance.screen.decide`` for that person alone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarion.domain.compliance.quiet_times import Category, profile_from_document, zone_for
from clarion.domain.compliance.screen import Screen, Verdict, decide
from clarion.services.screening import OrgRules, screen
from clarion.store.compliance import PersonFacts
from clarion.store.db import Conn
from clarion.store.sends import SendRow

pytestmark = pytest.mark.unit

PROFILE = profile_from_document({
    "name": "Org", "general": {"commercial": {"windows": [{"start": "21:00", "end": "08:00"}],
                                              "dates": ["2027-03-14"]}},
    "advanced": [
        {"name": "France", "when": {"country": ["FR"]},
         "rules": {"commercial": {"windows": [{"days": ["sun"], "start": "00:00",
                                               "end": "23:59"}]}}},
        {"name": "US phones", "when": {"phone": ["+1*"]},
         "rules": {"commercial": {"windows": [{"start": "20:00", "end": "09:00"}]}}}]})
ZONES = [None, "UTC", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe", "Nowhere/X"]
PEOPLE = st.lists(st.tuples(st.sampled_from(ZONES), st.sampled_from([None, "FR", "DE"]),
                            st.sampled_from([None, "+14155550100", "+33612345678"])),
                  min_size=1, max_size=40)


class _NoDatabase:
    """The screen is given every fact: it must not read anything."""

    async def execute(self, *_a: Any, **_k: Any) -> Any:
        raise AssertionError("the screen read the database")


def _send(deadline: datetime) -> SendRow:
    return SendRow(id="s", org_id="o", app_id="a", people_count=0, message={},
                   state="fanning_out", fanned_out_people=0, journey_id=None,
                   journey_step_id=None, message_id=None, created_at=deadline,
                   expires_at=deadline)


@settings(max_examples=150, deadline=None)
@given(PEOPLE, st.integers(0, 7 * 24 * 4), st.sampled_from([None, "Europe/Paris"]),
       st.integers(1, 48))
def test_the_page_screen_gives_each_person_their_own_verdict(
        people: list[tuple[str | None, str | None, str | None]], quarter_hours: int,
        org_zone: str | None, hours_to_deadline: int) -> None:
    now = datetime(2027, 3, 8, tzinfo=UTC) + timedelta(minutes=15 * quarter_hours)
    ids = [f"p{i:03d}" for i in range(len(people))]
    facts = {p: PersonFacts(zone, phone, {} if country is None else {"country": country})
             for p, (zone, country, phone) in zip(ids, people, strict=True)}
    rules = OrgRules(PROFILE, None, False, org_zone)
    send = _send(now + timedelta(hours=hours_to_deadline))
    got = asyncio.run(screen(cast(Conn, _NoDatabase()), rules, send, ids, now, facts=facts))
    for p in ids:
        f = facts[p]
        alone = decide(Screen(Category.COMMERCIAL,
                              PROFILE.rules_for(f.fields(), Category.COMMERCIAL),
                              zone_for(f.time_zone, org_zone), deadline=send.expires_at), now)
        if alone.verdict is Verdict.SEND:
            assert p in got.now
        elif alone.verdict is Verdict.HOLD:
            assert got.held[p] == alone.until
        else:
            assert got.blocked[p] == str(alone.reason)
    assert len(got.now) + len(got.held) + len(got.blocked) == len(ids)
