"""A fake sender shipped with the product: for tests, demos and dry runs without a provider.

Tokens are classified by content so scenarios can be scripted from the outside:
a token containing ``dead`` is an invalid token, ``mismatch`` a token/app mismatch,
``retry`` a retry-later, ``reject`` a permanent rejection, ``badcreds`` a credential error;
anything else is accepted. Every send is recorded in ``sent``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clarion.domain.outcomes import DeviceSend, Outcome, OutcomeKind

_RULES: tuple[tuple[str, OutcomeKind, str], ...] = (
    ("dead", OutcomeKind.INVALID_TOKEN, "Unregistered"),
    ("mismatch", OutcomeKind.MISMATCH, "BadDeviceToken"),
    ("retry", OutcomeKind.RETRY_LATER, "ServiceUnavailable"),
    ("reject", OutcomeKind.REJECTED, "BadTopic"),
    ("badcreds", OutcomeKind.CREDENTIAL_ERROR, "InvalidProviderToken"),
)


class FakeSender:
    def __init__(self) -> None:
        self.sent: list[DeviceSend] = []

    async def send(
        self, credentials: Mapping[str, Any], batch: Sequence[DeviceSend]
    ) -> list[Outcome]:
        out: list[Outcome] = []
        for item in batch:
            self.sent.append(item)
            token = item.device.token.lower()
            for needle, kind, reason in _RULES:
                if needle in token:
                    retry = 1.0 if kind is OutcomeKind.RETRY_LATER else None
                    out.append(Outcome(item.delivery_id, kind, reason=reason,
                                       detail=f"fake provider: token contains {needle!r}",
                                       retry_after_seconds=retry))
                    break
            else:
                out.append(Outcome(item.delivery_id, OutcomeKind.ACCEPTED,
                                   provider_id=item.delivery_id))
        return out
