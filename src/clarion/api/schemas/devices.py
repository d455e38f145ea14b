"""Wire schemas of the native device API. Devices and registration requests are read as the
domain defines them."""

from __future__ import annotations

from pydantic import BaseModel

from clarion.domain.devices import DeviceRead, RegistrationRead

__all__ = ["DevicePage", "DeviceRead", "RegistrationRead"]


class DevicePage(BaseModel):
    items: list[DeviceRead]
    next_cursor: str | None
