"""send_audience: a send's people as rows, so that fan-out reads each page by key

Before, ``sends.user_ids`` held the whole audience as one JSON array, and every fan-out page
read and decoded all of it: a send cost O(people² / page size). The audience moves to rows
keyed (send_id, position); existing sends are copied over, then the column goes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 04:00:00
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'send_audience',
        sa.Column('send_id', sa.String(length=36), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(['send_id'], ['sends.id'],
                                name=op.f('fk_send_audience_send_id_sends'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('send_id', 'position', name='pk_send_audience'),
    )
    op.create_index('ix_send_audience_person', 'send_audience', ['person_id', 'send_id'],
                    unique=False)
    with op.batch_alter_table('sends', schema=None) as batch_op:
        batch_op.add_column(sa.Column('people_count', sa.Integer(), server_default='0',
                                      nullable=False))
    conn = op.get_bind()
    audience = sa.table('send_audience', sa.column('send_id'), sa.column('position'),
                        sa.column('person_id'))
    sends = sa.table('sends', sa.column('id'), sa.column('user_ids', sa.JSON),
                     sa.column('people_count'))
    # One send at a time: an audience may hold a million people; all of them at once, more.
    for (send_id,) in conn.execute(sa.select(sends.c.id)).all():
        user_ids = conn.execute(sa.select(sends.c.user_ids)
                                .where(sends.c.id == send_id)).scalar_one()
        people = json.loads(user_ids) if isinstance(user_ids, str) else list(user_ids or [])
        for start in range(0, len(people), 10_000):
            conn.execute(audience.insert(), [
                {"send_id": send_id, "position": start + i, "person_id": p}
                for i, p in enumerate(people[start:start + 10_000])])
        conn.execute(sends.update().where(sends.c.id == send_id)
                     .values(people_count=len(people)))
    with op.batch_alter_table('sends', schema=None) as batch_op:
        batch_op.drop_column('user_ids')


def downgrade() -> None:
    with op.batch_alter_table('sends', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_ids', sa.JSON(), server_default='[]',
                                      nullable=False))
    conn = op.get_bind()
    audience = sa.table('send_audience', sa.column('send_id'), sa.column('position'),
                        sa.column('person_id'))
    sends = sa.table('sends', sa.column('id'), sa.column('user_ids', sa.JSON))
    rows = conn.execute(sa.select(audience.c.send_id, audience.c.person_id)
                        .order_by(audience.c.send_id, audience.c.position)).all()
    people: dict[str, list[str]] = {}
    for send_id, person_id in rows:
        people.setdefault(send_id, []).append(person_id)
    for send_id, ids in people.items():
        conn.execute(sends.update().where(sends.c.id == send_id).values(user_ids=ids))
    with op.batch_alter_table('sends', schema=None) as batch_op:
        batch_op.drop_column('people_count')
    op.drop_index('ix_send_audience_person', table_name='send_audience')
    op.drop_table('send_audience')
