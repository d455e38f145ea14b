"""A send's own compliance rules: ``sends.rules``

Besides the org's rules, a journey's send may carry a quiet-time profile in place of the org's
(the journey's), and be excluded from the frequency cap (JSON; null: the org's rules only).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sends") as batch:
        batch.add_column(sa.Column("rules", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sends") as batch:
        batch.drop_column("rules")
