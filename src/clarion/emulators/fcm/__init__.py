"""A local FCM HTTP v1 service with its OAuth token endpoint (``clarion emulator fcm``).

``FcmEmulator`` is the importable async API (tests, demos); ``command`` is the Typer command;
``new_service_account_info`` makes a service account key JSON for a project.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clarion.emulators.fcm.cli import command
    from clarion.emulators.fcm.server import FcmEmulator, new_service_account_info

# Imported on first use (PEP 562): `clarion --help` must not load the servers.
_HOME = {
    "FcmEmulator": "clarion.emulators.fcm.server",
    "command": "clarion.emulators.fcm.cli",
    "new_service_account_info": "clarion.emulators.fcm.server",
}
__all__ = ["FcmEmulator", "command", "new_service_account_info"]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name]), name)

