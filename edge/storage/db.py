"""SQLite through SQLAlchemy: one file, WAL, durable commits, schema kept by Alembic.

Writers take the database lock when their transaction begins (BEGIN IMMEDIATE), so two
threads never both read-then-write and fail half-way; readers use plain deferred
transactions and, under WAL, never wait for a writer.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

BUSY_TIMEOUT_MS = 10_000


class StorageFull(Exception):
    """The disk (or the outbox's declared budget) has no room for new work."""


def _make_engine(path: Path, *, immediate: bool) -> Engine:
    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed transaction survives power loss, not only a process crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """The controller's one store. `write()` and `read()` give sessions that commit or roll
    back as a unit; domain services take a Database and nothing else of storage."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.writer = _make_engine(path, immediate=True)
        self.reader = _make_engine(path, immediate=False)
        self._write_sessions = sessionmaker(self.writer, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.reader, expire_on_commit=False)

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self._write_sessions() as session:
            try:
                yield session
                session.commit()
            except sqlite3.OperationalError as exc:
                session.rollback()
                raise _translate(exc) from exc
            except Exception as exc:
                session.rollback()
                cause = getattr(exc, "orig", None)
                if isinstance(cause, sqlite3.OperationalError) and _is_full(cause):
                    raise StorageFull(str(cause)) from exc
                raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        # Closing (not rolling back) ends the read but keeps loaded objects usable.
        with self._read_sessions() as session:
            yield session

    def upgrade(self) -> None:
        from edge.storage.migrate import upgrade_to_head

        upgrade_to_head(self)

    def dispose(self) -> None:
        self.writer.dispose()
        self.reader.dispose()


def _is_full(exc: sqlite3.OperationalError) -> bool:
    return "full" in str(exc).lower()


def _translate(exc: sqlite3.OperationalError) -> Exception:
    return StorageFull(str(exc)) if _is_full(exc) else exc
