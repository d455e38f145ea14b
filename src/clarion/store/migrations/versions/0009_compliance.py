"""Compliance: quiet times, frequency caps and consent per org; held pushes and the cap ledger

``sends.category`` (commercial | transactional, existing sends are commercial) says which rules
apply. ``compliance_settings`` holds an org's rules (no row: none, and fan-out skips the
screen); ``consents`` a person's opt-in or opt-out per app; ``cap_ledger`` the commercial
pushes that left, per (send, person), which frequency caps count; ``held_pushes`` the people
whose push waits for the end of their quiet time; ``compliance_events`` what the rules did to
each person (held, released, blocked), for timelines and the blocked-recipients export.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 05:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_GUID = sa.String(length=36)


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('sends', schema=None) as batch_op:
        batch_op.add_column(sa.Column('category', sa.String(length=16),
                                      server_default='commercial', nullable=False))
    op.create_table(
        'compliance_settings',
        sa.Column('org_id', _GUID, nullable=False),
        sa.Column('quiet_times', sa.JSON(), nullable=True),
        sa.Column('frequency_caps', sa.JSON(), nullable=True),
        sa.Column('require_consent', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('opt_outs', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('time_zone', sa.String(length=64), nullable=True),
        sa.Column('updated_at', _ts(), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('org_id'),
    )
    op.create_table(
        'consents',
        sa.Column('org_id', _GUID, nullable=False),
        sa.Column('app_id', _GUID, nullable=False),
        sa.Column('person_id', _GUID, nullable=False),
        sa.Column('opted_in', sa.Boolean(), nullable=False),
        sa.Column('source', sa.String(length=64), nullable=False),
        sa.Column('at', _ts(), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['app_id'], ['apps.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('app_id', 'person_id', name='pk_consents'),
    )
    op.create_table(
        'cap_ledger',
        sa.Column('org_id', _GUID, nullable=False),
        sa.Column('person_id', _GUID, nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('send_id', _GUID, nullable=False),
        sa.Column('sent_at', _ts(), nullable=False),
        sa.ForeignKeyConstraint(['send_id'], ['sends.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('send_id', 'person_id', name='pk_cap_ledger'),
    )
    op.create_index('ix_cap_ledger_person', 'cap_ledger', ['org_id', 'person_id', 'sent_at'])
    op.create_table(
        'held_pushes',
        sa.Column('send_id', _GUID, nullable=False),
        sa.Column('person_id', _GUID, nullable=False),
        sa.Column('release_at', _ts(), nullable=False),
        sa.Column('held_at', _ts(), nullable=False),
        sa.ForeignKeyConstraint(['send_id'], ['sends.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('send_id', 'person_id', name='pk_held_pushes'),
    )
    op.create_index('ix_held_pushes_release', 'held_pushes', ['send_id', 'release_at'])
    op.create_table(
        'compliance_events',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                  nullable=False),
        sa.Column('org_id', _GUID, nullable=False),
        sa.Column('app_id', _GUID, nullable=False),
        sa.Column('send_id', _GUID, nullable=False),
        sa.Column('person_id', _GUID, nullable=False),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.Column('at', _ts(), nullable=False),
        sa.Column('until', _ts(), nullable=True),
        sa.ForeignKeyConstraint(['send_id'], ['sends.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_compliance_events_person', 'compliance_events',
                    ['org_id', 'person_id', 'at'])
    op.create_index('ix_compliance_events_send', 'compliance_events', ['send_id', 'kind'])


def downgrade() -> None:
    op.drop_index('ix_compliance_events_send', table_name='compliance_events')
    op.drop_index('ix_compliance_events_person', table_name='compliance_events')
    op.drop_table('compliance_events')
    op.drop_index('ix_held_pushes_release', table_name='held_pushes')
    op.drop_table('held_pushes')
    op.drop_index('ix_cap_ledger_person', table_name='cap_ledger')
    op.drop_table('cap_ledger')
    op.drop_table('consents')
    op.drop_table('compliance_settings')
    with op.batch_alter_table('sends', schema=None) as batch_op:
        batch_op.drop_column('category')
