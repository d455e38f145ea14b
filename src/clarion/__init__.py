"""Clarion: self-hostable push notifications with a CIJ-compatible device-registration API."""

__version__ = "0.1.0"
