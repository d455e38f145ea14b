"""Provider failures that hold work back, logged once per cause.

A provider failing for a whole app — its host's certificate not trusted, the host unreachable,
the app's credentials refused — makes every delivery (or dry run) of that app and platform
wait for a retry. Logging each device would flood the log; logging nothing left operators
guessing while ``clarion send --wait`` timed out. ``TroubleLog`` logs a WARNING the first time
an (app, platform, reason) is seen, again only after ``QUIET_SECONDS`` of the same one (a new
reason is a new cause, logged at once), and one INFO line when that app and platform's sends
go through again.

``send_or_retry_later`` is the one call of a provider adapter: an adapter that raises (a bug)
holds its batch back for a retry instead of losing it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from clarion.domain.outcomes import DeviceSend, Outcome, OutcomeKind, Platform, Sender

QUIET_SECONDS = 600.0
WAITS = (OutcomeKind.RETRY_LATER, OutcomeKind.CREDENTIAL_ERROR)


class TroubleLog:
    def __init__(self, logger: logging.Logger, *, what: tuple[str, str],
                 quiet_seconds: float = QUIET_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._what = what  # singular and plural: ("delivery", "deliveries")
        self._quiet = quiet_seconds
        self._clock = clock
        self._logged: dict[tuple[str, Platform, str], float] = {}  # cause -> when logged

    def batch(self, app_id: str, platform: Platform, outcomes: Sequence[Outcome]) -> None:
        """Look at one batch's outcomes: log the causes that make some wait, or the recovery
        when the batch went through after a logged cause."""
        waiting = [o for o in outcomes if o.kind in WAITS]
        if not waiting:
            if any(o.kind is OutcomeKind.ACCEPTED for o in outcomes):
                self._recovered(app_id, platform)
            return
        now = self._clock()
        counts = Counter(o.reason or o.kind.value for o in waiting)
        for reason, n in counts.most_common():
            key = (app_id, platform, reason)
            last = self._logged.get(key)
            if last is not None and now - last < self._quiet:
                continue
            self._logged[key] = now
            detail = next((o.detail for o in waiting if (o.reason or o.kind.value) == reason
                           and o.detail), "")
            self._log.warning(
                "%d %s %s of app %s wait%s for a retry: %s%s (logged once per cause; again "
                "if it lasts %.0f min)", n, platform.value, self._what[n != 1], app_id,
                "s" if n == 1 else "", reason,
                f": {detail}" if detail else "", self._quiet / 60)

    def _recovered(self, app_id: str, platform: Platform) -> None:
        causes = [k for k in self._logged if k[:2] == (app_id, platform)]
        if not causes:
            return
        for key in causes:
            del self._logged[key]
        self._log.info("%s %s of app %s go through again (after %s)", platform.value,
                       self._what[1], app_id, ", ".join(sorted(k[2] for k in causes)))


async def send_or_retry_later(sender: Sender, platform: Platform, credentials: Mapping[str, Any],
                              batch: Sequence[DeviceSend], *, logger: logging.Logger,
                              failed: str, detail: str,
                              retry_after_seconds: float | None = None) -> list[Outcome]:
    """``sender.send(credentials, batch)``. An exception it raises is logged with ``failed``
    (its ``%s``: the platform) and gives every send of the batch a RETRY_LATER outcome,
    reason ``InternalError``, whose detail is ``detail`` and the exception's class only: an
    exception's text may quote what a remote server sent."""
    try:
        return await sender.send(credentials, batch)
    except Exception as exc:  # an adapter bug must not lose the work
        logger.exception(failed, platform.value)
        return [Outcome(s.delivery_id, OutcomeKind.RETRY_LATER, reason="InternalError",
                        detail=f"{detail} ({type(exc).__name__})",
                        retry_after_seconds=retry_after_seconds) for s in batch]
