import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from edge.storage import Database, OutboxEvent, record_event
from edge.storage.migrate import load_models
from edge.storage.models import Base


def test_schema_is_wal_and_matches_the_models(db: Database) -> None:
    with db.writer.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        load_models()
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_seq_has_no_gap_after_a_rolled_back_event(db: Database) -> None:
    with db.write() as session:
        record_event(session, "door.opened", {"compartment": 1})
    with pytest.raises(RuntimeError):
        with db.write() as session:
            record_event(session, "door.opened", {"compartment": 2})
            raise RuntimeError("state change failed after the event was written")
    with db.write() as session:
        record_event(session, "door.closed", {"compartment": 1})
    with db.read() as session:
        rows = session.scalars(select(OutboxEvent).order_by(OutboxEvent.seq)).all()
    assert [(r.seq, r.type) for r in rows] == [(1, "door.opened"), (2, "door.closed")]


def test_committed_event_is_on_disk_for_another_connection(db: Database) -> None:
    with db.write() as session:
        event = record_event(session, "parcel.deposited", {"compartment": 3})
    raw = sqlite3.connect(db.path)
    assert raw.execute("select type from outbox where message_id=?", (event.message_id,)).fetchone() == ("parcel.deposited",)
    raw.close()


def test_upgrade_twice_is_harmless(tmp_path: Path) -> None:
    database = Database(tmp_path / "x.sqlite3")
    database.upgrade()
    database.upgrade()
    with database.read() as session:
        assert session.scalars(select(OutboxEvent)).all() == []
    database.dispose()


def test_migrations_form_one_line_from_an_empty_database() -> None:
    """One head: every box upgrades through the same steps in the same order."""
    from alembic.script import ScriptDirectory

    from edge.storage.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1
    assert [r.revision for r in reversed(list(script.walk_revisions()))] == ["0001", "0002", "0003", "0004", "0005",
                                                                        "0008_residents", "0011_assurance",
                                                                        "0007_locker"]


def test_every_migration_downgrades_and_upgrades_again(tmp_path: Path) -> None:
    from alembic import command

    from edge.storage.migrate import alembic_config

    database = Database(tmp_path / "round.sqlite3")
    database.upgrade()
    config = alembic_config(database)
    with database.writer.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
        command.upgrade(config, "head")
        load_models()
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    database.dispose()
