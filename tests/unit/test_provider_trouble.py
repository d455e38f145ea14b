"""A provider failure that holds deliveries back is logged once per cause, not per device."""

from __future__ import annotations

import logging

import pytest

from clarion.domain.outcomes import Outcome, OutcomeKind, Platform
from clarion.services.provider_trouble import TroubleLog

pytestmark = pytest.mark.unit

APP = "app-1"
TLS = "the APNs server's certificate is not trusted: set CLARION_CA_FILE to its CA file"


def _batch(n: int, kind: OutcomeKind, reason: str | None, detail: str | None = None
           ) -> list[Outcome]:
    return [Outcome(f"d{i}", kind, reason=reason, detail=detail) for i in range(n)]


def test_once_per_cause_again_after_the_quiet_period_or_for_a_new_cause(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = TroubleLog(logging.getLogger("test.trouble"), what=("delivery", "deliveries"),
                     quiet_seconds=600, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="test.trouble")

    log.batch(APP, Platform.IOS, _batch(500, OutcomeKind.RETRY_LATER, "TLSError", TLS))
    for _ in range(20):  # the same cause, batch after batch: not logged again
        now[0] += 10
        log.batch(APP, Platform.IOS, _batch(500, OutcomeKind.RETRY_LATER, "TLSError", TLS))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"500 ios deliveries of app {APP} wait for a retry: TLSError: {TLS} "
                        "(logged once per cause; again if it lasts 10 min)"]

    log.batch(APP, Platform.ANDROID, _batch(1, OutcomeKind.RETRY_LATER, "UNAVAILABLE"))
    assert caplog.records[-1].getMessage().startswith(
        f"1 android delivery of app {APP} waits for a retry: UNAVAILABLE (logged")
    log.batch(APP, Platform.IOS, _batch(2, OutcomeKind.CREDENTIAL_ERROR, "Paused", "paused"))
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 3  # new causes

    now[0] += 600  # the quiet period is over: the lasting cause is logged again
    log.batch(APP, Platform.IOS, _batch(1, OutcomeKind.RETRY_LATER, "TLSError", TLS))
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 4


def test_the_recovery_is_logged_once_and_forgets_the_causes(
        caplog: pytest.LogCaptureFixture) -> None:
    log = TroubleLog(logging.getLogger("test.trouble"), what=("dry run", "dry runs"),
                     clock=lambda: 0.0)
    caplog.set_level(logging.INFO, logger="test.trouble")
    accepted = _batch(4, OutcomeKind.ACCEPTED, None)
    log.batch(APP, Platform.IOS, accepted)  # nothing was wrong: nothing to say
    assert caplog.records == []

    log.batch(APP, Platform.IOS, _batch(4, OutcomeKind.RETRY_LATER, "TLSError", TLS))
    log.batch(APP, Platform.IOS, accepted)
    log.batch(APP, Platform.IOS, accepted)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[1:] == [f"ios dry runs of app {APP} go through again (after TLSError)"]
    # Failing again after the recovery is a new incident: logged at once.
    log.batch(APP, Platform.IOS, _batch(4, OutcomeKind.RETRY_LATER, "TLSError", TLS))
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2
    # Final outcomes (a dead token, a rejection) hold nothing back: not logged here.
    log.batch(APP, Platform.WEB, _batch(4, OutcomeKind.INVALID_TOKEN, "Unregistered"))
    assert len(caplog.records) == 3
