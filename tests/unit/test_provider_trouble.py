"""A provider failure that holds deliveries back is logged once per cause, not per device; an
adapter that raises holds its batch back for a retry."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from clarion.domain import outcomes
from clarion.domain.outcomes import Outcome, OutcomeKind, Platform
from clarion.services.provider_trouble import TroubleLog, send_or_retry_later

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


class _Broken:
    async def send(self, credentials: Mapping[str, Any], batch: Sequence[outcomes.DeviceSend]
                   ) -> list[Outcome]:
        raise RuntimeError("the server said: secret")


async def test_an_adapter_that_raises_holds_its_batch_back_for_a_retry(
        caplog: pytest.LogCaptureFixture) -> None:
    batch = [outcomes.DeviceSend(f"d{i}", outcomes.DeviceAddress(Platform.IOS, "t"),
                                 outcomes.Notification()) for i in range(2)]
    caplog.set_level(logging.INFO, logger="test.trouble")

    got = await send_or_retry_later(_Broken(), Platform.IOS, {}, batch,
                                    logger=logging.getLogger("test.trouble"),
                                    failed="the %s sender raised", detail="Clarion failed",
                                    retry_after_seconds=5.0)

    assert got == [Outcome(f"d{i}", OutcomeKind.RETRY_LATER, reason="InternalError",
                           detail="Clarion failed (RuntimeError)", retry_after_seconds=5.0)
                   for i in range(2)]  # the class only, never the exception's text
    assert [r.getMessage() for r in caplog.records] == ["the ios sender raised"]
