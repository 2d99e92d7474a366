"""Ingest: devices, dedup keys, events partitioned by month, gaps, rejected messages.

Revision ID: f0001
Revises:
"""
from alembic import op

revision = "f0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE devices (
        site_id text NOT NULL,
        device_id text NOT NULL,
        watermark bigint NOT NULL DEFAULT 0,      -- every seq up to here is stored
        max_seq bigint NOT NULL DEFAULT 0,        -- the highest seq seen
        online boolean,
        status jsonb,
        status_ts timestamptz,
        compartments jsonb,
        compartments_ts timestamptz,
        last_event_ts timestamptz,
        last_received_at timestamptz,
        PRIMARY KEY (site_id, device_id)
    )""")
    # The dedup keys live in their own, unpartitioned table: a unique constraint on a
    # partitioned table must include the partition key, which would let the same
    # (device, seq) or message_id land twice in two different months (ADR 0160).
    op.execute("""
    CREATE TABLE event_keys (
        site_id text NOT NULL,
        device_id text NOT NULL,
        seq bigint NOT NULL,
        message_id uuid NOT NULL,
        received_at timestamptz NOT NULL,
        PRIMARY KEY (site_id, device_id, seq),
        CONSTRAINT event_keys_message_id_key UNIQUE (message_id)
    )""")
    op.execute("""
    CREATE TABLE events (
        site_id text NOT NULL,
        device_id text NOT NULL,
        seq bigint NOT NULL,
        message_id uuid NOT NULL,
        type text NOT NULL,
        ts timestamptz NOT NULL,
        data jsonb NOT NULL,
        received_at timestamptz NOT NULL
    ) PARTITION BY RANGE (received_at)""")
    op.execute("CREATE INDEX events_device_seq ON events (site_id, device_id, seq)")
    op.execute("CREATE INDEX events_type_received ON events (type, received_at)")
    op.execute("""
    CREATE TABLE gaps (
        id bigserial PRIMARY KEY,
        site_id text NOT NULL,
        device_id text NOT NULL,
        from_seq bigint NOT NULL,
        to_seq bigint NOT NULL,
        detected_at timestamptz NOT NULL,
        replay_requested_at timestamptz,
        replay_count integer NOT NULL DEFAULT 0,
        closed_at timestamptz,
        CHECK (from_seq <= to_seq)
    )""")
    op.execute("CREATE INDEX gaps_open ON gaps (site_id, device_id) WHERE closed_at IS NULL")
    op.execute("""
    CREATE TABLE rejected_messages (
        id bigserial PRIMARY KEY,
        topic text NOT NULL,
        payload bytea NOT NULL,
        reason text NOT NULL,
        received_at timestamptz NOT NULL
    )""")


def downgrade() -> None:
    for table in ("rejected_messages", "gaps", "events", "event_keys", "devices"):
        op.execute(f"DROP TABLE {table}")
