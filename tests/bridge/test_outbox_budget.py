"""The outbox's storage budget: durable events are never dropped (new work is refused
instead); telemetry goes first, oldest first, counted and announced; totals stay exact."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from edge.clock import FakeClock
from edge.storage import Database, OutboxEvent, Priority, StorageFull, outbox, record_event
from edge.storage.outbox import DROPPED_EVENT


def budget(db: Database, rows: int, size: int = 10**9) -> None:
    with db.write() as session:
        outbox.set_budget(session, max_rows=rows, max_bytes=size)


def record(db: Database, count: int, priority: Priority = Priority.NORMAL, type_: str = "door.opened",
           clock: FakeClock | None = None) -> list[int]:
    with db.write() as session:
        return [record_event(session, type_, {"compartment": 1}, priority=priority,
                             **({"clock": clock} if clock else {})).seq for _ in range(count)]


def counted(db: Database) -> tuple[int, int]:
    with db.read() as session:
        return session.execute(select(func.count(), func.coalesce(func.sum(OutboxEvent.size_bytes), 0))
                               .where(OutboxEvent.published_at.is_(None))).one()


def totals(db: Database) -> tuple[int, int]:
    with db.read() as session:
        return outbox.pending(session)


def test_running_totals_match_the_table_through_insert_publish_and_delete(db, clock):
    record(db, 20)
    record(db, 5, Priority.TELEMETRY)
    with db.write() as session:
        outbox.mark_published(session, [1, 2, 3], clock.now())
        outbox.drop_telemetry(session, rows=2, reason="budget")
    with pytest.raises(RuntimeError):
        with db.write() as session:
            record_event(session, "door.opened", {"compartment": 2})
            raise RuntimeError("rolled back with its event")
    assert totals(db) == tuple(counted(db))
    assert totals(db)[0] == 20 - 3 + 5 - 2 + 1  # +1: the outbox.dropped announcement


def test_durable_events_are_refused_not_dropped_when_the_budget_is_spent(db):
    budget(db, rows=100)
    kept = record(db, 100)
    with pytest.raises(StorageFull, match="outbox is full"):
        record(db, 1, type_="booking.requested")
    with db.read() as session:
        assert session.scalars(select(OutboxEvent.seq).order_by(OutboxEvent.seq)).all() == kept


def test_bytes_count_too(db):
    budget(db, rows=10**6, size=64 * 1024)
    with pytest.raises(StorageFull):
        with db.write() as session:
            for _ in range(100):
                record_event(session, "request.submitted", {"description": "x" * 1000})


def test_telemetry_is_dropped_oldest_first_counted_and_announced(db):
    budget(db, rows=100)
    telemetry = record(db, 60, Priority.TELEMETRY, "telemetry.reported")
    durable = record(db, 40)
    record(db, 1, type_="booking.requested")  # over budget: the oldest telemetry makes room
    with db.read() as session:
        left = set(session.scalars(select(OutboxEvent.seq)))
        dropped = sorted(set(telemetry) - left)
        announcement = session.scalars(select(OutboxEvent).where(OutboxEvent.type == DROPPED_EVENT)).one()
        assert outbox.dropped_count(session) == len(dropped)
    assert dropped == telemetry[:len(dropped)] and dropped  # oldest first
    assert set(durable) <= left
    assert announcement.data["ranges"] == [[dropped[0], dropped[-1]]]
    assert announcement.data["count"] == len(dropped)
    assert totals(db) == tuple(counted(db)) and totals(db)[0] <= 100


def test_new_telemetry_that_does_not_fit_is_dropped_and_counted(db):
    budget(db, rows=100)
    record(db, 100)
    with db.write() as session:
        event = record_event(session, "telemetry.reported", {"cpu": 0.5}, priority=Priority.TELEMETRY)
        assert event.seq is None
        assert outbox.dropped_count(session) == 1
    assert totals(db)[0] == 100


def test_prune_keeps_a_tail_of_published_rows_and_ages_out_telemetry(db, clock):
    record(db, 50)
    old_telemetry = record(db, 3, Priority.TELEMETRY, clock=clock)
    clock.advance(days=8)
    with db.write() as session:
        outbox.mark_published(session, list(range(1, 51)), clock.now())
        outbox.prune(session, keep_published=10, telemetry_max_age=timedelta(days=7), clock=clock)
    with db.read() as session:
        left = session.scalars(select(OutboxEvent.seq).order_by(OutboxEvent.seq)).all()
    assert left[:10] == list(range(41, 51))
    assert not set(old_telemetry) & set(left)
    assert totals(db) == tuple(counted(db))


def test_seq_ranges():
    assert outbox.seq_ranges([1, 2, 3, 7, 9, 10]) == [[1, 3], [7, 7], [9, 10]]
