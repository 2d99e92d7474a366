"""residents: follow-up of help requests and feedback (status, staff's reply); ratings of
finished bookings, activities and requests (feedback subject)

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


    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.alter_column('service_id', existing_type=sa.String(length=64), nullable=True)
        batch_op.add_column(sa.Column('subject_kind', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('subject_id', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_column('subject_id')
        batch_op.drop_column('subject_kind')
        batch_op.alter_column('service_id', existing_type=sa.String(length=64), nullable=False)
    for table in FOLLOWED_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f'ix_{table}_resident_id'))
            batch_op.drop_column('updated_at')
            batch_op.drop_column('staff')
            batch_op.drop_column('reply')
            batch_op.drop_column('status')
