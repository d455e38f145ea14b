"""A local FCM HTTP v1 service with its OAuth token endpoint (``clarion emulator fcm``).

``FcmEmulator`` is the importable async API (tests, demos); ``command`` is the Typer command;
``new_service_account_info`` makes a service account key JSON for a project.
"""

from clarion.emulators.fcm.cli import command
from clarion.emulators.fcm.server import FcmEmulator, new_service_account_info

__all__ = ["FcmEmulator", "command", "new_service_account_info"]
