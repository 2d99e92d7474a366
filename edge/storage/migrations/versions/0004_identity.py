"""identity: encrypted iris templates and the iris consent record

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""
from alembic import op
import sqlalchemy as sa
import edge.storage.models


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('iris_consents',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('resident_id', sa.String(length=64), nullable=False),
    sa.Column('consented_at', edge.storage.models.UtcDateTime(), nullable=False),
    sa.Column('revoked_at', edge.storage.models.UtcDateTime(), nullable=True),
    sa.Column('recorded_how', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_iris_consents_resident_id'), 'iris_consents', ['resident_id'], unique=False)
    op.create_table('iris_templates',
    sa.Column('resident_id', sa.String(length=64), nullable=False),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', edge.storage.models.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('resident_id')
    )


def downgrade() -> None:
    op.drop_table('iris_templates')
    op.drop_index(op.f('ix_iris_consents_resident_id'), table_name='iris_consents')
    op.drop_table('iris_consents')
