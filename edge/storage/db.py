"""SQLite through SQLAlchemy: one file, WAL, durable commits, schema kept by Alembic.

Writers take the database lock when their transaction begins (BEGIN IMMEDIATE), so two
threads never both read-then-write and fail half-way; readers use plain deferred
transactions and, under WAL, never wait for a writer. Within this process, `write()` also
takes turns first-come first-served (ADR 0037): SQLite's own busy handler sleeps and polls,
so a thread committing back to back would starve another one waiting for the lock.

`claim()` is the one exception to synchronous=FULL (ADR 0137): a short write transaction on
its own pre-opened connection that commits to the WAL without waiting for the disk (it
survives the process being killed, not yet a power cut), for the record a door opening
needs before its unlock frame; `sync_soon()` then puts it on stable storage while the frame
goes out, and the next FULL commit would in any case.
"""
from __future__ import annotations

import os
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

BUSY_TIMEOUT_MS = 10_000


class StorageFull(Exception):
    """The disk (or the outbox's declared budget) has no room for new work."""


class _WriteTurns:
    """A first-come first-served lock for write transactions of one process: the holder
    hands the turn straight to the longest waiter. A thread already holding a turn (a
    nested `write()`) does not queue behind itself; SQLite decides, as before."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._holder: int | None = None
        self._waiters: deque[tuple[int, threading.Event]] = deque()

    def held_here(self) -> bool:
        return self._holder == threading.get_ident()

    def acquire(self, timeout_s: float) -> None:
        me = threading.get_ident()
        with self._mutex:
            if self._holder is None:
                self._holder = me
                return
            turn = threading.Event()
            self._waiters.append((me, turn))
        if turn.wait(timeout_s):
            return
        with self._mutex:
            if turn.is_set():  # handed over just as the wait ended
                return
            self._waiters.remove((me, turn))
        raise sqlite3.OperationalError("database is locked (waited for this process's other writers)")

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._holder, turn = self._waiters.popleft()
                turn.set()
            else:
                self._holder = None


class ClaimTransaction:
    """The claim connection's open transaction: plain sqlite3 statements, and callbacks
    (metrics) run once it has committed."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self._after_commit: list[Callable[[], None]] = []

    def execute(self, sql: str, parameters: tuple[object, ...] = ()) -> sqlite3.Cursor:
        return self.connection.execute(sql, parameters)

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)

    def committed(self) -> None:
        for callback in self._after_commit:
            callback()


def _set_pragmas(dbapi_conn: sqlite3.Connection, *, synchronous: str = "FULL") -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed transaction survives power loss, not only a process crash.
    # NORMAL (the claim connection only, ADR 0137): it survives the process dying; the WAL is
    # synced right after (sync_wal), and by the next FULL commit in any case.
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def _make_engine(path: Path, *, immediate: bool) -> Engine:
    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        _set_pragmas(dbapi_conn)

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
        self._turns = _WriteTurns()
        self._syncer: ThreadPoolExecutor | None = None
        self._syncer_lock = threading.Lock()
        self._claimer: sqlite3.Connection | None = None  # the claim connection, opened once

    @contextmanager
    def write(self) -> Iterator[Session]:
        if self._turns.held_here():
            with self._write_session() as session:
                yield session
            return
        try:
            self._turns.acquire(BUSY_TIMEOUT_MS / 1000)
        except sqlite3.OperationalError as exc:
            raise _translate(exc) from exc
        try:
            with self._write_session() as session:
                yield session
        finally:
            self._turns.release()

    @contextmanager
    def claim(self) -> Iterator[ClaimTransaction]:
        """A write transaction like `write()` (same turns, BEGIN IMMEDIATE, commit or roll
        back as a unit) on the claim connection, in plain sqlite3 statements: its commit
        reaches the WAL file, so a killed process loses nothing, but does not wait for the
        disk. Only for records that must exist before a fast action (ADR 0137); call
        `sync_soon()` right after it commits."""
        if self._turns.held_here():
            raise RuntimeError("a claim cannot run inside this thread's write transaction")
        try:
            self._turns.acquire(BUSY_TIMEOUT_MS / 1000)
        except sqlite3.OperationalError as exc:
            raise _translate(exc) from exc
        try:
            connection = self._claim_connection()
            connection.execute("BEGIN IMMEDIATE")
            transaction = ClaimTransaction(connection)
            try:
                yield transaction
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            raise _translate(exc) from exc
        finally:
            self._turns.release()
        transaction.committed()

    def open_claims(self) -> None:
        """Open the claim connection now, so the first claim does not pay for it."""
        self._claim_connection()

    def _claim_connection(self) -> sqlite3.Connection:
        with self._syncer_lock:
            if self._claimer is None:
                connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
                _set_pragmas(connection, synchronous="NORMAL")
                # Checkpoints (and their fsyncs) are left to the other writers: a claim must
                # never be the commit that crosses the WAL's threshold and pays for one.
                connection.execute("PRAGMA wal_autocheckpoint=0")
                self._claimer = connection
            return self._claimer

    def sync_wal(self) -> None:
        """Put every transaction committed so far on stable storage: fsync the WAL file (the
        same sync a FULL commit makes). Harmless when there is nothing new to sync."""
        try:
            fd = os.open(f"{self.path}-wal", os.O_RDONLY)
        except FileNotFoundError:  # no WAL (checkpointed away and closed): nothing pending
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def sync_soon(self) -> Future[None]:
        """`sync_wal()` on a background thread (fsync releases the GIL): the caller goes on
        with work that does not need it, e.g. sending an unlock frame, and may wait after."""
        with self._syncer_lock:
            if self._syncer is None:
                self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-wal-sync")
            return self._syncer.submit(self.sync_wal)

    @contextmanager
    def _write_session(self) -> Iterator[Session]:
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
        with self._syncer_lock:
            syncer, self._syncer = self._syncer, None
        if syncer is not None:
            syncer.shutdown(wait=True)
        self.writer.dispose()
        self.reader.dispose()
        with self._syncer_lock:
            claimer, self._claimer = self._claimer, None
        if claimer is not None:
            claimer.close()


def _is_full(exc: sqlite3.OperationalError) -> bool:
    return "full" in str(exc).lower()


def _translate(exc: sqlite3.OperationalError) -> Exception:
    return StorageFull(str(exc)) if _is_full(exc) else exc
