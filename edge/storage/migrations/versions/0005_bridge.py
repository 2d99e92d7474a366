"""bridge: outbox budget totals (kept by triggers), processed commands, reply routes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""
from alembic import op
import sqlalchemy as sa
import edge.storage.models


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# Running totals of unpublished outbox rows, so record_event checks the budget by reading one
# row instead of counting the table (ADR 0031).
TRIGGERS = [
    """CREATE TRIGGER outbox_stats_insert AFTER INSERT ON outbox WHEN NEW.published_at IS NULL
       BEGIN UPDATE outbox_stats SET pending_rows = pending_rows + 1,
             pending_bytes = pending_bytes + NEW.size_bytes WHERE id = 1; END""",
    """CREATE TRIGGER outbox_stats_publish AFTER UPDATE OF published_at ON outbox
       WHEN OLD.published_at IS NULL AND NEW.published_at IS NOT NULL
       BEGIN UPDATE outbox_stats SET pending_rows = pending_rows - 1,
             pending_bytes = pending_bytes - OLD.size_bytes WHERE id = 1; END""",
    """CREATE TRIGGER outbox_stats_delete AFTER DELETE ON outbox WHEN OLD.published_at IS NULL
       BEGIN UPDATE outbox_stats SET pending_rows = pending_rows - 1,
             pending_bytes = pending_bytes - OLD.size_bytes WHERE id = 1; END""",
]


def upgrade() -> None:
    op.create_table('outbox_stats',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pending_rows', sa.Integer(), nullable=False),
    sa.Column('pending_bytes', sa.Integer(), nullable=False),
    sa.Column('max_rows', sa.Integer(), nullable=False),
    sa.Column('max_bytes', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.execute(
        "INSERT INTO outbox_stats (id, pending_rows, pending_bytes, max_rows, max_bytes) "
        "SELECT 1, COUNT(*), COALESCE(SUM(size_bytes), 0), 500000, 268435456 "
        "FROM outbox WHERE published_at IS NULL"
    )
    for trigger in TRIGGERS:
        op.execute(trigger)
    op.create_table('bridge_processed_command',
    sa.Column('transaction_id', sa.String(length=128), nullable=False),
    sa.Column('command', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.JSON(), nullable=False),
    sa.Column('received_at', edge.storage.models.UtcDateTime(), nullable=False),
    sa.Column('finished_at', edge.storage.models.UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('transaction_id')
    )
    with op.batch_alter_table('bridge_processed_command', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bridge_processed_command_received_at'), ['received_at'], unique=False)

    op.create_table('bridge_reply_route',
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('topic', sa.String(length=256), nullable=True),
    sa.Column('correlation_data', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['seq'], ['outbox.seq'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('seq')
    )


def downgrade() -> None:
    op.drop_table('bridge_reply_route')
    with op.batch_alter_table('bridge_processed_command', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bridge_processed_command_received_at'))
    op.drop_table('bridge_processed_command')
    for name in ("outbox_stats_insert", "outbox_stats_publish", "outbox_stats_delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table('outbox_stats')
