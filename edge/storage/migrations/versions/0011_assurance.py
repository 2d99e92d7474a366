"""assurance: attempt limits for courier codes and one-time identity codes; one-time code hashes

Revision ID: 0011_assurance
Revises: 0005
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa
import edge.storage.models


revision = '0011_assurance'
down_revision = '0008_residents'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('login_attempts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=96), nullable=False),
    sa.Column('ts', edge.storage.models.UtcDateTime(), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('cooldown_until', edge.storage.models.UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_login_attempts_key_ts', 'login_attempts', ['key', 'ts'], unique=False)
    op.create_table('identity_otp',
    sa.Column('resident_id', sa.String(length=64), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', edge.storage.models.UtcDateTime(), nullable=False),
    sa.Column('expires_at', edge.storage.models.UtcDateTime(), nullable=False),
    sa.Column('used_at', edge.storage.models.UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('resident_id')
    )


def downgrade() -> None:
    op.drop_table('identity_otp')
    op.drop_index('ix_login_attempts_key_ts', table_name='login_attempts')
    op.drop_table('login_attempts')
