"""locker: compartments out of service for maintenance (reason, when, by whom)

Revision ID: 0007_locker
Revises: 0005
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa
import edge.storage.models


revision = '0007_locker'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('locker_compartment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('maintenance', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('maintenance_at', edge.storage.models.UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column('maintenance_by', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('locker_compartment', schema=None) as batch_op:
        batch_op.drop_column('maintenance_by')
        batch_op.drop_column('maintenance_at')
        batch_op.drop_column('maintenance')
