from __future__ import annotations

import dataclasses
import threading
from datetime import date, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from edge.clock import FakeClock
from edge.community import BookingError, BookingService
from edge.community.models import BookingRow
from edge.storage import Database

from tests.support.community import ALICE, BOB, local, utc
from tests.support.station import outbox

SATURDAY = date(2026, 11, 21)  # the fake clock's day: 16:00 in Shanghai


def states(bookings: BookingService, day: date = SATURDAY, resident_id: str | None = None) -> dict[int, str]:
    return {s.start.hour: s.state for s in bookings.day_slots("hall", day, resident_id)}


def test_day_view_from_opening_hours_in_site_time(bookings: BookingService) -> None:
    slots = bookings.day_slots("hall", SATURDAY)
    assert slots[0].start == local(2026, 11, 21, 9) and slots[-1].end == local(2026, 11, 21, 21)
    assert states(bookings) == {9: "past", 10: "past", 11: "past", 12: "closed", 13: "closed",
                                14: "past", 15: "past", 16: "past", 17: "free", 18: "free",
                                19: "free", 20: "free"}


def test_a_venue_closed_on_a_weekday_shows_every_slot_closed(bookings: BookingService) -> None:
    saturday = bookings.day_slots("studio", SATURDAY)
    assert [s.state for s in saturday] == ["closed"] * 4
    monday = bookings.day_slots("studio", date(2026, 11, 23))
    assert [(s.start.hour, s.state) for s in monday] == [(9, "free"), (11, "free"), (13, "free"),
                                                         (15, "free")]


def test_day_boundary_is_local_midnight_not_utc(bookings: BookingService, clock: FakeClock) -> None:
    clock.advance(hours=8, minutes=30)  # 2026-11-21 16:30 UTC = 00:30 on the 22nd in Shanghai
    assert set(states(bookings, SATURDAY).values()) == {"past", "closed"}
    sunday = states(bookings, date(2026, 11, 22))
    assert sunday[9] == "free"
    booking = bookings.request(ALICE, "hall", local(2026, 11, 22, 9))
    assert booking.start == utc(2026, 11, 22, 1)
    assert states(bookings, date(2026, 11, 22))[9] == "pending"
    assert all(s.booking_id is None for s in bookings.day_slots("hall", SATURDAY))


def test_request_is_pending_and_announced_without_personal_data(bookings, db: Database) -> None:
    booking = bookings.request(ALICE, "hall", local(2026, 11, 21, 18))
    assert booking.state == "pending" and booking.end == local(2026, 11, 21, 19)
    [event] = outbox(db, "booking.requested")
    assert event.data == {"booking_id": booking.booking_id, "venue_id": "hall",
                          "resident_id": "res-1", "start": "2026-11-21T10:00:00.000Z",
                          "end": "2026-11-21T11:00:00.000Z", "state": "pending"}
    assert states(bookings, resident_id="res-1")[18] == "mine"
    assert states(bookings, resident_id="res-2")[18] == "pending"
    assert bookings.bookings_of("res-1") == [booking]


def test_no_double_booking(bookings: BookingService, db: Database) -> None:
    bookings.request(ALICE, "hall", local(2026, 11, 21, 18))
    for who, code in ((BOB, "slot_taken"), (ALICE, "already_booked")):
        with pytest.raises(BookingError) as refused:
            bookings.request(who, "hall", local(2026, 11, 21, 18))
        assert refused.value.code == code
    assert len(outbox(db, "booking.requested")) == 1


@pytest.mark.timeout(30)
def test_two_kiosk_sessions_racing_for_one_slot(bookings: BookingService, db: Database) -> None:
    start = local(2026, 11, 21, 19)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt(resident) -> None:  # type: ignore[no-untyped-def]
        barrier.wait()
        try:
            bookings.request(resident, "hall", start)
            outcomes.append("booked")
        except BookingError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=attempt, args=(r,)) for r in (ALICE, BOB)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["booked", "slot_taken"]
    with db.read() as s:
        assert len(s.scalars(select(BookingRow)).all()) == 1
    assert len(outbox(db, "booking.requested")) == 1


def test_the_database_itself_refuses_two_live_bookings_of_one_slot(db: Database, clock) -> None:
    def row(booking_id: str, state: str) -> BookingRow:
        return BookingRow(id=booking_id, venue_id="hall", resident_id=booking_id,
                          resident_name_masked="x", starts_at=utc(2026, 11, 21, 10),
                          ends_at=utc(2026, 11, 21, 11), state=state, requested_at=clock.now())

    with db.write() as s:
        s.add_all([row("a", "cancelled"), row("b", "rejected"), row("c", "approved")])
    with pytest.raises(IntegrityError):
        with db.write() as s:
            s.add(row("d", "pending"))


@pytest.mark.parametrize(("start", "code"), [
    (local(2026, 11, 21, 15), "slot_past"),
    (local(2026, 11, 21, 12), "venue_closed"),
    (local(2026, 11, 21, 17, 30), "not_a_slot"),
    (local(2026, 11, 21, 22), "not_a_slot"),
    (datetime(2026, 11, 21, 18), "bad_time"),
    ("2026-11-21T18:00:00+08:00", "bad_time"),
])
def test_requests_outside_free_slots_are_refused(bookings, start: datetime, code: str) -> None:
    with pytest.raises(BookingError) as refused:
        bookings.request(ALICE, "hall", start)
    assert refused.value.code == code


def test_cancel_own_booking_before_the_window(bookings, clock: FakeClock, db: Database) -> None:
    booking = bookings.request(ALICE, "hall", local(2026, 11, 21, 19))  # window: 120 min
    with pytest.raises(BookingError) as refused:
        bookings.cancel(dataclasses.replace(BOB, assurance="high"), booking.booking_id)
    assert refused.value.code == "unknown_booking"
    clock.advance(minutes=59, seconds=59)  # 16:59:59, the last second before 17:00
    cancelled = bookings.cancel(ALICE, booking.booking_id)
    assert cancelled.state == "cancelled"
    [event] = outbox(db, "booking.cancelled")
    assert event.data["booking_id"] == booking.booking_id and event.data["state"] == "cancelled"
    assert states(bookings)[19] == "free"
    with pytest.raises(BookingError) as again:
        bookings.cancel(ALICE, booking.booking_id)
    assert again.value.code == "not_active"


def test_cancel_inside_the_window_is_refused(bookings, clock: FakeClock, db: Database) -> None:
    booking = bookings.request(ALICE, "hall", local(2026, 11, 21, 19))
    assert booking.cancel_before == local(2026, 11, 21, 17)
    clock.advance(minutes=60)
    with pytest.raises(BookingError) as refused:
        bookings.cancel(ALICE, booking.booking_id)
    assert refused.value.code == "too_late"
    assert bookings.booking(booking.booking_id).state == "pending"
    assert outbox(db, "booking.cancelled") == []


def test_decision_is_idempotent_and_subscribers_hear_after_commit(bookings, db: Database) -> None:
    booking = bookings.request(ALICE, "hall", local(2026, 11, 21, 20))
    heard: list[tuple[str, str, str]] = []

    def listener(event_type: str, data: dict) -> None:
        # after commit: another connection already sees the new state
        heard.append((event_type, data["booking_id"], bookings.booking(data["booking_id"]).state))

    bookings.subscribe(listener)
    approved = bookings.decide(booking.booking_id, True)
    again = bookings.decide(booking.booking_id, True)
    assert approved.state == again.state == "approved"
    assert heard == [("booking.decided", booking.booking_id, "approved")]
    assert states(bookings, resident_id="res-2")[20] == "taken"
    with pytest.raises(BookingError) as refused:
        bookings.decide(booking.booking_id, False, "double-booked at the desk")
    assert refused.value.code == "already_decided"


def test_rejection_frees_the_slot_and_keeps_the_reason(bookings) -> None:
    booking = bookings.request(ALICE, "hall", local(2026, 11, 21, 20))
    rejected = bookings.decide(booking.booking_id, False, "closed for cleaning")
    assert (rejected.state, rejected.reason) == ("rejected", "closed for cleaning")
    assert states(bookings)[20] == "free"


def test_decisions_on_cancelled_or_unknown_bookings_are_clear_errors(bookings) -> None:
    booking = bookings.request(ALICE, "hall", local(2026, 11, 21, 20))
    bookings.cancel(ALICE, booking.booking_id)
    for booking_id, code in ((booking.booking_id, "booking_cancelled"), ("nope", "unknown_booking")):
        with pytest.raises(BookingError) as refused:
            bookings.decide(booking_id, True)
        assert refused.value.code == code


def test_a_failing_subscriber_does_not_undo_the_booking(bookings) -> None:
    def broken(_type: str, _data: dict) -> None:
        raise RuntimeError("screen gone")

    bookings.subscribe(broken)
    booking = bookings.request(ALICE, "hall", local(2026, 11, 21, 17))
    assert bookings.booking(booking.booking_id).state == "pending"


def test_bookings_outlive_their_venue_leaving_the_catalogue(bookings, catalogue) -> None:
    from tests.support.community import payload

    booking = bookings.request(ALICE, "hall", local(2026, 11, 21, 20))
    catalogue.replace(payload(version="v2", venues=[]))
    assert [b.booking_id for b in bookings.bookings_of("res-1")] == [booking.booking_id]
    assert bookings.decide(booking.booking_id, True).state == "approved"
    assert bookings.cancel(ALICE, booking.booking_id).state == "cancelled"


def test_a_full_outbox_refuses_the_booking_and_leaves_the_slot_free(bookings, db: Database) -> None:
    from edge.storage import StorageFull
    from edge.storage.outbox import set_budget

    with db.write() as s:
        set_budget(s, max_rows=0, max_bytes=1_000_000)
    with pytest.raises(StorageFull):
        bookings.request(ALICE, "hall", local(2026, 11, 21, 18))
    assert states(bookings, resident_id="res-1")[18] == "free"
    assert bookings.bookings_of("res-1") == []
