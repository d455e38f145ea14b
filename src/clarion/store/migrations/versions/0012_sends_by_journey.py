"""Sends by journey (``ix_sends_journey``); journey instances no longer paged by id

A journey's report counts its held pushes per step through the journey's sends; without this
index that read scanned every send of the instance. The report sums its instances in the
database now, so nothing reads them in (journey, id) pages: ``ix_journey_instances_page`` is
dropped (every entry paid for it).

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
    op.drop_index("ix_journey_instances_page", table_name="journey_instances")


def downgrade() -> None:
    op.create_index("ix_journey_instances_page", "journey_instances", ["journey_id", "id"])
    op.drop_index("ix_sends_journey", table_name="sends")
