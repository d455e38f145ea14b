"""push_messages, org_settings, send_messages: designed messages, org settings for
placeholders, and the per-person rendering of a personalised send

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'push_messages',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('org_id', sa.String(length=36), nullable=False),
        sa.Column('app_id', sa.String(length=36), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('document', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['app_id'], ['apps.id'],
                                name=op.f('fk_push_messages_app_id_apps'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['org_id'], ['orgs.id'],
                                name=op.f('fk_push_messages_org_id_orgs'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_push_messages')),
    )
    op.create_index('ix_push_messages_org_name', 'push_messages', ['org_id', 'name'],
                    unique=False)
    op.create_table(
        'org_settings',
        sa.Column('org_id', sa.String(length=36), nullable=False),
        sa.Column('settings', sa.JSON(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['orgs.id'],
                                name=op.f('fk_org_settings_org_id_orgs'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('org_id', name=op.f('pk_org_settings')),
    )
    op.create_table(
        'send_messages',
        sa.Column('send_id', sa.String(length=36), nullable=False),
        sa.Column('person_id', sa.String(length=36), nullable=False),
        sa.Column('message', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['send_id'], ['sends.id'],
                                name=op.f('fk_send_messages_send_id_sends'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('send_id', 'person_id', name='pk_send_messages'),
    )


def downgrade() -> None:
    op.drop_table('send_messages')
    op.drop_table('org_settings')
    op.drop_index('ix_push_messages_org_name', table_name='push_messages')
    op.drop_table('push_messages')
