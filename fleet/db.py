"""The platform's PostgreSQL: connections, Alembic upgrade, monthly partitions of `events`."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_PARTITION_LOCK = 0x666C656574  # pg_advisory_xact_lock key: one partition creator at a time


def conninfo(database_url: str) -> str:
    """The libpq connection string of a SQLAlchemy URL (psycopg speaks libpq, not SQLAlchemy)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def connect(database_url: str) -> psycopg.Connection:
    return psycopg.connect(conninfo(database_url))


def upgrade(database_url: str) -> None:
    """Bring the schema to head, then make sure this month's and next month's partitions exist."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    engine = create_engine(make_url(database_url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
    with connect(database_url) as conn:
        ensure_partitions(conn, datetime.now(timezone.utc), months_ahead=1)


def month_start(moment: datetime, plus: int = 0) -> datetime:
    index = moment.year * 12 + moment.month - 1 + plus
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=timezone.utc)


def partition_name(moment: datetime) -> str:
    return f"events_{moment.year:04d}{moment.month:02d}"


def ensure_partitions(conn: psycopg.Connection, moment: datetime, months_ahead: int = 1) -> list[str]:
    """Create the month partitions of `events` for `moment` and the months after it that are
    missing (each worker may call this; an advisory lock keeps them from racing). Commits."""
    created = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK,))
        for plus in range(months_ahead + 1):
            start, end = month_start(moment, plus), month_start(moment, plus + 1)
            name = partition_name(start)
            exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]
            if not exists:
                conn.execute(f'CREATE TABLE "{name}" PARTITION OF events '
                             f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')")
                created.append(name)
    return created
