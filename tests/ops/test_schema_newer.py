"""A rolled-back release starts on the database a newer release migrated (ADR 0151)."""
from __future__ import annotations

import sqlite3

from edge.storage import Database


def test_an_older_release_runs_on_a_newer_schema_without_touching_it(settings) -> None:
    db = Database(settings.database_path)
    db.upgrade()
    db.dispose()
    with sqlite3.connect(settings.database_path) as raw:  # what a newer release leaves behind
        raw.execute("CREATE TABLE newer_release_things (id INTEGER PRIMARY KEY)")
        raw.execute("UPDATE alembic_version SET version_num = '0099_from_the_future'")
    again = Database(settings.database_path)
    again.upgrade()  # no "Can't locate revision": started as it is
    again.dispose()
    with sqlite3.connect(settings.database_path) as raw:
        assert raw.execute("SELECT version_num FROM alembic_version").fetchall() == [("0099_from_the_future",)]
        assert raw.execute("SELECT count(*) FROM newer_release_things").fetchone() == (0,)
