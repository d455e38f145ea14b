"""Liveness and readiness, as the service sees itself."""

from __future__ import annotations

from clarion.store.db import Database


class Health:
    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def database(self) -> str:
        return self._db.dialect

    async def check_database(self) -> None:
        """Raises when the database cannot be read."""
        await self._db.ping()
