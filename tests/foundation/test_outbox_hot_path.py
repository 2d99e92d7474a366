"""The outbox's hot path (ADR 0037): write transactions take turns first-come first-served,
record_event's raw insert stores what the ORM reads back, and the per-transaction budget
headroom never lets an event past the budget."""
from __future__ import annotations

import sqlite3
import threading

import pytest
from sqlalchemy import select

from edge.storage import Database, OutboxEvent, Priority, StorageFull, outbox, record_event
from edge.storage.db import _WriteTurns


def _wait_until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(1000):
        if condition():
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.timeout(30)
def test_a_writer_committing_back_to_back_cannot_overtake_a_waiting_one(db: Database):
    entered: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def busy_writer() -> None:
        with db.write() as session:
            record_event(session, "door.opened", {"compartment": 1})
            entered.append("busy")
            holding.set()
            release.wait(10)
        with db.write() as session:  # straight back for another turn
            entered.append("busy again")

    def waiting_writer() -> None:
        with db.write() as session:
            outbox.mark_published(session, [1], db_now())
            entered.append("waiting")

    busy = threading.Thread(target=busy_writer)
    busy.start()
    assert holding.wait(10)
    waiting = threading.Thread(target=waiting_writer)
    waiting.start()
    _wait_until(lambda: len(db._turns._waiters) == 1, "the second writer to queue")
    release.set()
    busy.join(10)
    waiting.join(10)
    assert entered == ["busy", "waiting", "busy again"]
    with db.read() as session:
        assert session.scalar(select(OutboxEvent.published_at).where(OutboxEvent.seq == 1)) is not None


def db_now():  # type: ignore[no-untyped-def]
    from edge.clock import SystemClock

    return SystemClock().now()


@pytest.mark.timeout(30)
def test_a_writer_that_waits_too_long_gives_up_and_leaves_the_queue():
    turns = _WriteTurns()
    turns.acquire(1.0)
    failures: list[Exception] = []

    def impatient() -> None:
        try:
            turns.acquire(0.05)
        except sqlite3.OperationalError as exc:
            failures.append(exc)

    thread = threading.Thread(target=impatient)
    thread.start()
    thread.join(10)
    assert len(failures) == 1 and "locked" in str(failures[0])
    assert not turns._waiters
    turns.release()
    turns.acquire(0.05)  # free again: nobody is left holding a turn
    turns.release()


def test_the_raw_insert_reads_back_through_the_orm_as_written(db: Database):
    data = {"description": "厨房水龙头漏水", "compartment": 3, "nested": {"ok": True}}
    with db.write() as session:
        written = record_event(session, "service.requested", data, priority=Priority.EMERGENCY)
    with db.read() as session:
        row = session.get(OutboxEvent, written.seq)
        raw = session.connection().exec_driver_sql(
            "SELECT data, ts FROM outbox WHERE seq = ?", (written.seq,)).one()
    assert (row.message_id, row.type, row.ts, row.priority, row.data) == (
        written.message_id, "service.requested", written.ts, Priority.EMERGENCY, data)
    assert row.size_bytes == len(raw.data.encode())  # the budget counts the bytes stored
    assert raw.ts == outbox.db_time(written.ts)
    with db.read() as session:
        assert outbox.pending(session) == (1, row.size_bytes)


def test_one_transaction_cannot_record_past_the_budget(db: Database):
    with db.write() as session:
        outbox.set_budget(session, max_rows=5, max_bytes=10**9)
    with db.write() as session:
        seqs = [record_event(session, "door.opened", {"compartment": n}).seq for n in range(5)]
        with pytest.raises(StorageFull):
            record_event(session, "door.opened", {"compartment": 6})
    with db.read() as session:
        assert outbox.pending(session)[0] == 5  # the five that fitted; the sixth was refused
    assert None not in seqs


def test_room_freed_inside_the_transaction_is_found_again(db: Database):
    with db.write() as session:
        outbox.set_budget(session, max_rows=3, max_bytes=10**9)
    with db.write() as session:
        seqs = [record_event(session, "door.opened", {"compartment": n}).seq for n in range(3)]
        outbox.mark_published(session, seqs[:2], db_now())  # frees two rows of the budget
        more = [record_event(session, "door.opened", {"compartment": n}).seq for n in range(2)]
        with pytest.raises(StorageFull):
            record_event(session, "door.opened", {"compartment": 9})
        session.rollback()
    assert None not in more and len(more) == 2

