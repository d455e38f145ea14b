"""Journeys: journeys, their versioned documents, and one instance per person and entry

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'journeys',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('org_id', sa.String(length=36), nullable=False),
        sa.Column('app_id', sa.String(length=36), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('state', sa.String(length=8), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('live_version', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_journeys_org_id_orgs'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_journeys')))
    op.create_index('ix_journeys_org', 'journeys', ['org_id', 'created_at', 'id'], unique=False)
    op.create_table(
        'journey_versions',
        sa.Column('journey_id', sa.String(length=36), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('document', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['journey_id'], ['journeys.id'],
                                name=op.f('fk_journey_versions_journey_id_journeys'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('journey_id', 'version', name='pk_journey_versions'))
    op.create_table(
        'journey_instances',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('org_id', sa.String(length=36), nullable=False),
        sa.Column('journey_id', sa.String(length=36), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.String(length=36), nullable=False),
        sa.Column('entry_no', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=8), nullable=False),
        sa.Column('step_id', sa.String(length=100), nullable=True),
        sa.Column('waiting_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('waiting_kind', sa.String(length=12), nullable=True),
        sa.Column('waiting_key', sa.String(length=100), nullable=True),
        sa.Column('waiting_interaction', sa.String(length=8), nullable=True),
        sa.Column('variants', sa.JSON(), nullable=False),
        sa.Column('path', sa.JSON(), nullable=False),
        sa.Column('done_reason', sa.String(length=120), nullable=True),
        sa.Column('goal_met', sa.Boolean(), nullable=False),
        sa.Column('entered_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['journey_id'], ['journeys.id'],
                                name=op.f('fk_journey_instances_journey_id_journeys'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_journey_instances')),
        sa.UniqueConstraint('journey_id', 'version', 'person_id', 'entry_no',
                            name='uq_journey_instances_entry'))
    op.create_index('ix_journey_instances_person', 'journey_instances',
                    ['journey_id', 'person_id', 'entry_no'], unique=False)
    op.create_index('ix_journey_instances_waiting', 'journey_instances',
                    ['journey_id', 'waiting_kind', 'waiting_key', 'person_id'], unique=False)
    op.create_index('ix_journey_instances_page', 'journey_instances', ['journey_id', 'id'],
                    unique=False)
    op.create_index('ix_journey_instances_entered', 'journey_instances',
                    ['journey_id', 'entered_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_journey_instances_entered', table_name='journey_instances')
    op.drop_index('ix_journey_instances_page', table_name='journey_instances')
    op.drop_index('ix_journey_instances_waiting', table_name='journey_instances')
    op.drop_index('ix_journey_instances_person', table_name='journey_instances')
    op.drop_table('journey_instances')
    op.drop_table('journey_versions')
    op.drop_index('ix_journeys_org', table_name='journeys')
    op.drop_table('journeys')
