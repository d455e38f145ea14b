"""What every table module shares: the one ``MetaData`` (with its constraint naming
convention) and the column types used across tables."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

GUID = String(36)


class UTCDateTime(TypeDecorator[datetime]):
    """Time-zone-aware UTC datetimes on both databases.

    PostgreSQL keeps the zone (timestamptz); SQLite stores text and hands back naive values,
    which would then compare and serialise differently. Values are converted to UTC going in
    and marked UTC coming out, so every layer above sees the same aware datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column: pass an aware datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


TS = UTCDateTime()
BigId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite rowid alias needs INTEGER
