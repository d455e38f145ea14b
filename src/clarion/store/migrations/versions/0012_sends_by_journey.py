"""Sends by journey: ``ix_sends_journey``

A journey's report counts its held pushes per step through the journey's sends; without this
index that read scanned every send of the instance.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 15:30:00
"""

from __future__ import annotations

from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_sends_journey", "sends", ["journey_id", "journey_step_id"])


def downgrade() -> None:
    op.drop_index("ix_sends_journey", table_name="sends")
