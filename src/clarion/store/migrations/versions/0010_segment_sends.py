"""Sends to a segment: ``sends.segment_id``

A send's audience is either the user ids it was given (stored at once in ``send_audience``) or
a segment, whose members fan-out reads page by page by key and appends to ``send_audience`` as
it goes (the audience as it was reached). No foreign key: deleting a segment ends the sends
that were reading it at the page they had reached, and their record stays.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 11:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sends") as batch:
        batch.add_column(sa.Column("segment_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sends") as batch:
        batch.drop_column("segment_id")
