"""residents: follow-up of help requests and feedback (status, staff's reply)

Revision ID: 0008_residents
Revises: 0005
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa
import edge.storage.models


revision = '0008_residents'
down_revision = '0005'
branch_labels = None
depends_on = None

FOLLOWED_TABLES = ('service_requests', 'feedback')


def upgrade() -> None:
    for table in FOLLOWED_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('status', sa.String(length=16), nullable=False,
                                          server_default='received'))
            batch_op.add_column(sa.Column('reply', sa.Text(), nullable=True))
            batch_op.add_column(sa.Column('staff', sa.String(length=64), nullable=True))
            batch_op.add_column(sa.Column('updated_at', edge.storage.models.UtcDateTime(), nullable=True))
            batch_op.create_index(batch_op.f(f'ix_{table}_resident_id'), ['resident_id'], unique=False)


def downgrade() -> None:
    for table in FOLLOWED_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f'ix_{table}_resident_id'))
            batch_op.drop_column('updated_at')
            batch_op.drop_column('staff')
            batch_op.drop_column('reply')
            batch_op.drop_column('status')
