"""Segments (dynamic filters and static member lists) and custom triggers with their firings

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 05:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

GUID = sa.String(36)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'segments',
        sa.Column('id', GUID, nullable=False),
        sa.Column('org_id', GUID, nullable=False),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('kind', sa.String(8), nullable=False),
        sa.Column('filter', sa.Text(), nullable=True),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('updated_at', TS, nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name='fk_segments_org_id_orgs',
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_segments'),
    )
    op.create_index('ix_segments_org', 'segments', ['org_id', 'id'])
    op.create_table(
        'segment_members',
        sa.Column('segment_id', GUID, nullable=False),
        sa.Column('person_id', GUID, nullable=False),
        sa.ForeignKeyConstraint(['segment_id'], ['segments.id'],
                                name='fk_segment_members_segment_id_segments',
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('segment_id', 'person_id', name='pk_segment_members'),
    )
    op.create_table(
        'triggers',
        sa.Column('id', GUID, nullable=False),
        sa.Column('org_id', GUID, nullable=False),
        sa.Column('name', sa.String(100), nullable=False),
        sa.Column('attributes', sa.JSON(), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name='fk_triggers_org_id_orgs',
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_triggers'),
        sa.UniqueConstraint('org_id', 'name', name='uq_triggers_org_name'),
    )
    op.create_table(
        'trigger_firings',
        sa.Column('id', GUID, nullable=False),
        sa.Column('org_id', GUID, nullable=False),
        sa.Column('trigger_id', GUID, nullable=False),
        sa.Column('trigger', sa.String(100), nullable=False),
        sa.Column('person_id', GUID, nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.Column('idempotency_key', sa.String(200), nullable=True),
        sa.Column('fired_at', TS, nullable=False),
        sa.ForeignKeyConstraint(['trigger_id'], ['triggers.id'],
                                name='fk_trigger_firings_trigger_id_triggers',
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_trigger_firings'),
        sa.UniqueConstraint('trigger_id', 'idempotency_key',
                            name='uq_trigger_firings_idempotency'),
    )
    op.create_index('ix_trigger_firings_org_time', 'trigger_firings', ['org_id', 'fired_at'])


def downgrade() -> None:
    op.drop_index('ix_trigger_firings_org_time', table_name='trigger_firings')
    op.drop_table('trigger_firings')
    op.drop_table('triggers')
    op.drop_table('segment_members')
    op.drop_index('ix_segments_org', table_name='segments')
    op.drop_table('segments')
