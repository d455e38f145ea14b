"""send_audience: a send's people in chunks of 5,000, so that fan-out reads each page by key

Before, ``sends.user_ids`` held the whole audience as one JSON array, and every fan-out page
read and decoded all of it: a send cost O(people² / page size). The audience moves to rows of
5,000 ids keyed (send_id, chunk); existing sends are copied over, then the column goes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 04:00:00
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


CHUNK = 5_000


def _people_type() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.ARRAY(sa.String(36)), "postgresql")


def upgrade() -> None:
    op.create_table(
        'send_audience',
        sa.Column('send_id', sa.String(length=36), nullable=False),
        sa.Column('chunk', sa.Integer(), nullable=False),
        sa.Column('people', _people_type(), nullable=False),
        sa.ForeignKeyConstraint(['send_id'], ['sends.id'],
                                name=op.f('fk_send_audience_send_id_sends'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('send_id', 'chunk', name='pk_send_audience'),
    )
    with op.batch_alter_table('sends', schema=None) as batch_op:
        batch_op.add_column(sa.Column('people_count', sa.Integer(), server_default='0',
                                      nullable=False))
    conn = op.get_bind()
    audience = sa.table('send_audience', sa.column('send_id'), sa.column('chunk'),
                        sa.column('people', _people_type()))
    sends = sa.table('sends', sa.column('id'), sa.column('user_ids', sa.JSON),
                     sa.column('people_count'))
    # One send at a time: an audience may hold 100,000 people; every send at once, far more.
    for (send_id,) in conn.execute(sa.select(sends.c.id)).all():
        user_ids = conn.execute(sa.select(sends.c.user_ids)
                                .where(sends.c.id == send_id)).scalar_one()
        people = json.loads(user_ids) if isinstance(user_ids, str) else list(user_ids or [])
        if people:
            conn.execute(audience.insert(), [
                {"send_id": send_id, "chunk": n, "people": people[i:i + CHUNK]}
                for n, i in enumerate(range(0, len(people), CHUNK))])
        conn.execute(sends.update().where(sends.c.id == send_id)
                     .values(people_count=len(people)))
    with op.batch_alter_table('sends', schema=None) as batch_op:
        batch_op.drop_column('user_ids')


def downgrade() -> None:
    with op.batch_alter_table('sends', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_ids', sa.JSON(), server_default='[]',
                                      nullable=False))
    conn = op.get_bind()
    audience = sa.table('send_audience', sa.column('send_id'), sa.column('chunk'),
                        sa.column('people', _people_type()))
    sends = sa.table('sends', sa.column('id'), sa.column('user_ids', sa.JSON))
    for (send_id,) in conn.execute(sa.select(sends.c.id)).all():
        people: list[str] = []
        for (chunk,) in conn.execute(sa.select(audience.c.people).where(
                audience.c.send_id == send_id).order_by(audience.c.chunk)).all():
            people.extend(chunk)
        conn.execute(sends.update().where(sends.c.id == send_id).values(user_ids=people))
    with op.batch_alter_table('sends', schema=None) as batch_op:
        batch_op.drop_column('people_count')
    op.drop_table('send_audience')
