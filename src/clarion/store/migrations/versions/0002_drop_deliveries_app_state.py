"""drop ix_deliveries_app_state: no query reads deliveries by (app, state)

Every delivery outcome moved the row's entry in this index (a delete and an insert per
notification) and every fan-out insert added one, for a query that no code runs: deliveries
are read by id, by send and by (send, person).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 19:30:00
"""

from __future__ import annotations

from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_app_state')


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_app_state', ['app_id', 'state'], unique=False)
