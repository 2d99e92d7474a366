"""The platform's copy of each station's catalogue (what catalogue.sync sends, whole).

Revision ID: f0003
Revises: f0002
"""
from alembic import op

revision = "f0003"
down_revision = "f0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE station_catalogues (
        site_id text NOT NULL,
        device_id text NOT NULL,
        catalogue jsonb NOT NULL,
        version text NOT NULL,
        updated_by text NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (site_id, device_id)
    )""")


def downgrade() -> None:
    op.execute("DROP TABLE station_catalogues")
