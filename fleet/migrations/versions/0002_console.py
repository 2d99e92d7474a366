"""Console: org units (district > street > community), staff, stations' community,
bookings and help requests projected from station events.

Revision ID: f0002
Revises: f0001
"""
from alembic import op

revision = "f0002"
down_revision = "f0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE org_units (
        id bigserial PRIMARY KEY,
        name text NOT NULL,
        level text NOT NULL CHECK (level IN ('district', 'street', 'community')),
        parent_id bigint REFERENCES org_units (id),
        CHECK ((level = 'district') = (parent_id IS NULL))
    )""")
    op.execute("ALTER TABLE devices ADD COLUMN community_id bigint REFERENCES org_units (id)")
    op.execute("""
    CREATE TABLE staff (
        id bigserial PRIMARY KEY,
        username text NOT NULL UNIQUE,
        display_name text NOT NULL,
        password_hash text NOT NULL,
        org_unit_id bigint NOT NULL REFERENCES org_units (id),
        failed_logins integer NOT NULL DEFAULT 0,
        locked_until timestamptz
    )""")
    op.execute("""
    CREATE TABLE bookings (
        booking_id text PRIMARY KEY,
        site_id text NOT NULL,
        device_id text NOT NULL,
        data jsonb NOT NULL,
        requested_at timestamptz NOT NULL,
        state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'rejected', 'cancelled')),
        reason text,
        decided_by text,
        decided_at timestamptz
    )""")
    op.execute("""
    CREATE TABLE help_requests (
        site_id text NOT NULL,
        device_id text NOT NULL,
        request_id text NOT NULL,
        data jsonb NOT NULL,
        submitted_at timestamptz NOT NULL,
        status text NOT NULL DEFAULT 'new'
            CHECK (status IN ('new', 'received', 'in_progress', 'done', 'closed')),
        escalated_to text CHECK (escalated_to IN ('street', 'district')),
        escalated_at timestamptz,
        updated_at timestamptz,
        PRIMARY KEY (site_id, device_id, request_id)
    )""")
    op.execute("""
    CREATE TABLE help_request_updates (
        id bigserial PRIMARY KEY,
        site_id text NOT NULL,
        device_id text NOT NULL,
        request_id text NOT NULL,
        status text NOT NULL,
        reply text,
        staff text NOT NULL,
        transaction_id text NOT NULL UNIQUE,
        at timestamptz NOT NULL,
        FOREIGN KEY (site_id, device_id, request_id) REFERENCES help_requests
    )""")
    # Commands to stations, written in the same transaction as the decision that makes them
    # and published by the console's sender (marked on PUBACK): a broker outage loses none.
    op.execute("""
    CREATE TABLE outgoing_commands (
        id bigserial PRIMARY KEY,
        topic text NOT NULL,
        payload jsonb NOT NULL,
        transaction_id text NOT NULL,
        created_at timestamptz NOT NULL,
        sent_at timestamptz
    )""")
    op.execute("CREATE INDEX outgoing_commands_unsent ON outgoing_commands (id) WHERE sent_at IS NULL")


def downgrade() -> None:
    op.execute("DROP TABLE outgoing_commands")
    for table in ("help_request_updates", "help_requests", "bookings", "staff"):
        op.execute(f"DROP TABLE {table}")
    op.execute("ALTER TABLE devices DROP COLUMN community_id")
    op.execute("DROP TABLE org_units")
