"""`clarion check-config` (being written)."""

from __future__ import annotations


def check_config() -> None:
    """Report what is configured and what is wrong."""
