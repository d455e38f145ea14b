"""Wire schemas of ``/v1/orgs/{org_id}/sends``: the domain's command and read models (one
definition each: the API validates the command once, the service takes it as it is)."""

from __future__ import annotations

from clarion.domain.messages import MessageIn
from clarion.domain.sends import DeliveryRead, SendCreate, SendRead

__all__ = ["DeliveryRead", "MessageIn", "SendCreate", "SendRead"]
