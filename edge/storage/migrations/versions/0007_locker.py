"""locker: compartments out of service for maintenance (reason, when, by whom); a parcel's
refusal reason; parcels sent from the station; the audit
trail append-only (triggers), with a purge window only the retention purge opens (ADR 0135)

Revision ID: 0007_locker
Revises: 0005
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa
import edge.storage.models


revision = '0007_locker'
down_revision = '0011_assurance'
branch_labels = None
depends_on = None

# The audit is append-only: no UPDATE ever; DELETE only of rows older than the purge window's
# `before`, and the window exists only inside the retention purge's own transaction.
AUDIT_TRIGGERS = [
    """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
       BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
    """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
       WHEN NOT EXISTS (SELECT 1 FROM audit_purge_window WHERE OLD.ts < audit_purge_window.before)
       BEGIN SELECT RAISE(ABORT, 'audit rows leave only through the retention purge'); END""",
]


def upgrade() -> None:
    op.create_table('locker_send',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('company', sa.String(length=64), nullable=False),
    sa.Column('size', sa.String(length=1), nullable=False),
    sa.Column('compartment', sa.Integer(), nullable=False),
    sa.Column('sender', sa.String(length=64), nullable=False),
    sa.Column('send_code_hash', sa.String(length=64), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('collector_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', edge.storage.models.UtcDateTime(), nullable=False),
    sa.Column('deposited_at', edge.storage.models.UtcDateTime(), nullable=True),
    sa.Column('collected_at', edge.storage.models.UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('locker_send', schema=None) as batch_op:
        batch_op.create_index('ix_locker_send_state', ['state'], unique=False)
    op.create_table('audit_purge_window',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('before', edge.storage.models.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    for trigger in AUDIT_TRIGGERS:
        op.execute(trigger)
    with op.batch_alter_table('locker_compartment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('maintenance', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('maintenance_at', edge.storage.models.UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column('maintenance_by', sa.String(length=64), nullable=True))
    with op.batch_alter_table('locker_parcel', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refusal_reason', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('locker_send', schema=None) as batch_op:
        batch_op.drop_index('ix_locker_send_state')
    op.drop_table('locker_send')
    with op.batch_alter_table('locker_parcel', schema=None) as batch_op:
        batch_op.drop_column('refusal_reason')
    op.execute("DROP TRIGGER audit_no_delete")
    op.execute("DROP TRIGGER audit_no_update")
    op.drop_table('audit_purge_window')
    with op.batch_alter_table('locker_compartment', schema=None) as batch_op:
        batch_op.drop_column('maintenance_by')
        batch_op.drop_column('maintenance_at')
        batch_op.drop_column('maintenance')
