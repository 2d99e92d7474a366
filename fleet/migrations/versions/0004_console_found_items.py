"""Console: found items (失物招领) staff publish to a station, and when each went back to its
owner; an index for the mailbox's and the reports' one-category lists.

The kiosk learns found items as notices of kind `found` in catalogue.sync (ADR 0127); this
table is the platform's record of them, so that "returned" can take the notice out of the
station's catalogue again and the console keeps the history (ADR 0163).

Revision ID: f0004_console_found_items
Revises: f0003
"""
from alembic import op

revision = "f0004_console_found_items"
down_revision = "f0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE found_items (
        id text PRIMARY KEY,                       -- the notice id on the station
        site_id text NOT NULL,
        device_id text NOT NULL,
        item text NOT NULL,                        -- the notice's title
        found_where text NOT NULL,                 -- its body
        claim_at text NOT NULL,                    -- its office: where to claim it
        contact text NOT NULL DEFAULT '',
        report_request_id text,                    -- the kiosk's "I found something", if from one
        published_by text NOT NULL,
        published_at timestamptz NOT NULL,
        returned_at timestamptz,
        returned_by text,
        returned_note text,
        FOREIGN KEY (site_id, device_id) REFERENCES devices ON DELETE CASCADE
    )""")
    op.execute("CREATE INDEX found_items_station ON found_items (site_id, device_id, published_at DESC)")
    # The mailbox and the found-item reports read one category of requests, newest first.
    op.execute("CREATE INDEX help_requests_category_time ON help_requests ((data->>'category'), submitted_at DESC)")


def downgrade() -> None:
    op.execute("DROP INDEX help_requests_category_time")
    op.execute("DROP TABLE found_items")
