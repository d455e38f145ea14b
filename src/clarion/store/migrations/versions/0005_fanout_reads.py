"""Fan-out reads: deliveries.sole, and the devices' person index covers platform and id

Most people have one device. (1) Counting the people a send reached used a "first accepted
device" marker per person (an ``interaction_firsts`` row, read then written); a delivery that
fan-out marks as its person's only device counts the person directly when it is accepted
(once: the outcome update is conditional on ``state = 'pending'``). Existing deliveries get
``false``: the markers keep counting them as before. (2) Fan-out looks up each person's active
devices; with platform and id in ``ix_devices_app_person_state`` that is one index search per
person, without reading the device's row.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 04:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sole', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_index('ix_devices_app_person_state')
        batch_op.create_index('ix_devices_app_person_state',
                              ['app_id', 'person_id', 'state', 'platform', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_index('ix_devices_app_person_state')
        batch_op.create_index('ix_devices_app_person_state', ['app_id', 'person_id', 'state'],
                              unique=False)
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_column('sole')
