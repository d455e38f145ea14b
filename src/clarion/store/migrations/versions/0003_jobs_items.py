"""jobs.items: how many accepted client requests a job carries, for the backlog cap

A group-commit job (registration.process, interactions.record) carries the requests of every
submission of its commit; the backlog cap (CLARION_MAX_BACKLOG) sums this column over the
waiting jobs, shared by every process. Other jobs carry 0. The due index gains the column so
that the sum reads the index only.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 02:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

_DUE = sa.text("state IN ('queued', 'running')")


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('items', sa.Integer(), server_default='0', nullable=False))
        batch_op.drop_index('ix_jobs_due', sqlite_where=_DUE, postgresql_where=_DUE)
        batch_op.create_index('ix_jobs_due', ['run_at', 'items'], unique=False,
                              sqlite_where=_DUE, postgresql_where=_DUE)


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_due', sqlite_where=_DUE, postgresql_where=_DUE)
        batch_op.create_index('ix_jobs_due', ['run_at'], unique=False,
                              sqlite_where=_DUE, postgresql_where=_DUE)
        batch_op.drop_column('items')
