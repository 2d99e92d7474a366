"""Venue booking: a day's slots from the venue's opening hours, requests that wait for the
platform's approval, cancellation before the venue's window, and the platform's decision.

What the kiosk knows is the whole truth here: pending and approved bookings block their slot,
checked inside the write transaction and enforced by a partial unique index (ADR 0052).
"""
from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from edge.assurance import require
from edge.clock import Clock, iso_utc
from edge.community.catalogue import CatalogueService, Venue
from edge.community.errors import BookingError, CatalogueError
from edge.community.models import ACTIVE_BOOKING_STATES, BookingRow
from edge.community.residents import Resident
from edge.logs import get_logger
from edge.storage import Actor, Database, audit, record_event

log = get_logger(__name__)

SlotState = Literal["free", "taken", "pending", "mine", "closed", "past"]
BookingState = Literal["pending", "approved", "rejected", "cancelled"]
Subscriber = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Slot:
    start: datetime  # aware, in the site's time zone
    end: datetime
    state: SlotState
    booking_id: str | None = None  # set for "mine", so the screen can offer to cancel


@dataclass(frozen=True)
class Booking:
    booking_id: str
    venue_id: str
    resident_id: str
    start: datetime
    end: datetime
    state: BookingState
    reason: str | None
    cancel_before: datetime  # the last moment the resident may cancel

    def wire(self) -> dict[str, Any]:
        return {"booking_id": self.booking_id, "venue_id": self.venue_id,
                "resident_id": self.resident_id, "start": iso_utc(self.start),
                "end": iso_utc(self.end), "state": self.state}


class BookingService:
    def __init__(self, db: Database, catalogue: CatalogueService, clock: Clock) -> None:
        self._db = db
        self._catalogue = catalogue
        self._clock = clock
        self._tz = catalogue.tz
        self._subscribers: list[Subscriber] = []
        self._subscribers_lock = threading.Lock()

    def subscribe(self, callback: Subscriber) -> None:
        """`callback(event_type, data)` after a change commits: booking.requested,
        booking.cancelled, booking.decided. Called on the thread that made the change."""
        with self._subscribers_lock:
            self._subscribers.append(callback)

    def day_slots(self, venue_id: str, day: date, resident_id: str | None = None) -> list[Slot]:
        """Every slot of `day` (site time) across the venue's weekly opening span; slots the
        venue is not open on that weekday are "closed"."""
        venue = self._catalogue.venue(venue_id)
        grid = _slot_grid(venue, day, self._tz)
        if not grid:
            return []
        with self._db.read() as s:
            live = _live_bookings(s, venue_id, grid[0][0], grid[-1][1])
        now = self._clock.now()
        return [self._slot_state(start, end, is_open, now, live, resident_id)
                for start, end, is_open in grid]

    def request(self, resident: Resident, venue_id: str, start: datetime) -> Booking:
        """Ask for the slot starting at `start`: "pending" until the platform decides."""
        venue = self._catalogue.venue(venue_id)
        slot = self._free_slot(venue, start, resident.resident_id)
        row = BookingRow(id=str(uuid.uuid4()), venue_id=venue_id,
                         resident_id=resident.resident_id,
                         resident_name_masked=resident.name_masked, starts_at=slot.start,
                         ends_at=slot.end, state="pending", requested_at=self._clock.now())
        try:
            with self._db.write() as s:
                # Checked again under the write lock: another kiosk session may have won.
                if _live_bookings(s, venue_id, slot.start, slot.end):
                    raise _slot_taken()
                s.add(row)
                s.flush()  # the unique index speaks here, before the event is written
                booking = _view(row, venue)
                record_event(s, "booking.requested", booking.wire(), clock=self._clock)
        except IntegrityError:
            raise _slot_taken() from None
        self._notify("booking.requested", booking.wire())
        return booking

    def cancel(self, resident: Resident, booking_id: str) -> Booking:
        """A typed phone alone cannot cancel: AssuranceTooLow (ADR 0115)."""
        require(resident.assurance, "cancel_booking")
        with self._db.write() as s:
            row = s.get(BookingRow, booking_id)
            if row is None or row.resident_id != resident.resident_id:
                raise BookingError("unknown_booking", "you have no such booking")
            venue = self._venue_or_none(row.venue_id)
            if row.state not in ACTIVE_BOOKING_STATES:
                raise BookingError("not_active", f"this booking is already {row.state}")
            if self._clock.now() >= _cancel_before(row, venue):
                raise BookingError("too_late", "it is too late to cancel this booking here; "
                                               "please contact the station staff")
            row.state = "cancelled"
            booking = _view(row, venue)
            record_event(s, "booking.cancelled", booking.wire(), clock=self._clock)
            audit(s, Actor.RESIDENT, "booking.cancel", "ok", actor_id=resident.resident_id,
                  target=booking_id, detail={"assurance": resident.assurance}, clock=self._clock)
        self._notify("booking.cancelled", booking.wire())
        return booking

    def decide(self, booking_id: str, approved: bool, reason: str | None = None) -> Booking:
        """The platform's decision on a pending booking. Repeating the same decision is
        harmless (commands are re-sent); changing it, or deciding a cancelled one, is refused."""
        decision: BookingState = "approved" if approved else "rejected"
        with self._db.write() as s:
            row = s.get(BookingRow, booking_id)
            if row is None:
                raise BookingError("unknown_booking", f"no booking {booking_id!r} on this station")
            venue = self._venue_or_none(row.venue_id)
            if row.state == decision:
                return _view(row, venue)
            if row.state == "cancelled":
                raise BookingError("booking_cancelled", "the resident cancelled this booking")
            if row.state != "pending":
                raise BookingError("already_decided", f"this booking was already {row.state}")
            row.state, row.reason, row.decided_at = decision, reason, self._clock.now()
            booking = _view(row, venue)
            audit(s, Actor.REMOTE, "booking.decide", decision, target=booking_id,
                  detail={"reason": reason} if reason else None, clock=self._clock)
        self._notify("booking.decided", {**booking.wire(), "reason": reason})
        return booking

    def booking(self, booking_id: str) -> Booking:
        with self._db.read() as s:
            row = s.get(BookingRow, booking_id)
        if row is None:
            raise BookingError("unknown_booking", f"no booking {booking_id!r} on this station")
        return _view(row, self._venue_or_none(row.venue_id))

    def bookings_of(self, resident_id: str,
                    venues: Mapping[str, Venue] | None = None) -> list[Booking]:
        """The resident's bookings that have not ended yet, soonest first, in any state.
        `venues` (the catalogue's, by id), when the caller has them already, saves a read;
        otherwise the catalogue is read once for all the bookings, not once per booking."""
        with self._db.read() as s:
            rows = s.scalars(select(BookingRow)
                             .where(BookingRow.resident_id == resident_id,
                                    BookingRow.ends_at > self._clock.now())
                             .order_by(BookingRow.starts_at)).all()
        if rows and venues is None:
            venues = {venue.id: venue for venue in self._catalogue.venues()}
        # A venue may leave the catalogue while bookings for it remain.
        return [_view(row, (venues or {}).get(row.venue_id)) for row in rows]

    def _free_slot(self, venue: Venue, start: datetime, resident_id: str) -> Slot:
        if not isinstance(start, datetime) or start.tzinfo is None:
            raise BookingError("bad_time", "a booking start needs a time zone")
        day = start.astimezone(self._tz).date()
        slot = next((s for s in self.day_slots(venue.id, day, resident_id) if s.start == start),
                    None)
        if slot is None:
            raise BookingError("not_a_slot", "bookings start at the beginning of a listed slot")
        if slot.state == "past":
            raise BookingError("slot_past", "this time has already begun")
        if slot.state == "closed":
            raise BookingError("venue_closed", "the venue is closed at this time")
        if slot.state == "mine":
            raise BookingError("already_booked", "you have already booked this time")
        if slot.state != "free":
            raise _slot_taken()
        return slot

    def _slot_state(self, start: datetime, end: datetime, is_open: bool, now: datetime,
                    live: list[BookingRow], resident_id: str | None) -> Slot:
        if not is_open:
            return Slot(start, end, "closed")
        if start <= now:
            return Slot(start, end, "past")
        for row in live:
            if row.starts_at < end and start < row.ends_at:
                if resident_id is not None and row.resident_id == resident_id:
                    return Slot(start, end, "mine", row.id)
                return Slot(start, end, "taken" if row.state == "approved" else "pending")
        return Slot(start, end, "free")

    def _venue_or_none(self, venue_id: str) -> Venue | None:
        # A venue may leave the catalogue while bookings for it remain.
        try:
            return self._catalogue.venue(venue_id)
        except CatalogueError:
            return None

    def _notify(self, event_type: str, data: dict[str, Any]) -> None:
        with self._subscribers_lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event_type, data)
            except Exception:  # a broken listener must not undo a committed booking
                log.exception("booking_subscriber_failed", event_type=event_type)


def _slot_grid(venue: Venue, day: date, tz: ZoneInfo) -> list[tuple[datetime, datetime, bool]]:
    """(start, end, open) for each slot from the earliest weekly opening to the latest close."""
    if not venue.opening_hours:
        return []
    step = timedelta(minutes=venue.slot_minutes)
    first = min(h.opens for h in venue.opening_hours)
    last = max(h.closes for h in venue.opening_hours)
    today = [h for h in venue.opening_hours if h.weekday == day.weekday()]
    grid = []
    start = datetime.combine(day, first, tz)
    end_of_span = datetime.combine(day, last, tz)
    while start + step <= end_of_span:
        end = start + step
        is_open = any(datetime.combine(day, h.opens, tz) <= start
                      and end <= datetime.combine(day, h.closes, tz) for h in today)
        grid.append((start, end, is_open))
        start = end
    return grid


def _live_bookings(s: Session, venue_id: str, start: datetime, end: datetime) -> list[BookingRow]:
    return list(s.scalars(select(BookingRow).where(
        BookingRow.venue_id == venue_id, BookingRow.state.in_(ACTIVE_BOOKING_STATES),
        BookingRow.starts_at < end, BookingRow.ends_at > start)))


def _cancel_before(row: BookingRow, venue: Venue | None) -> datetime:
    minutes = venue.cancel_before_minutes if venue is not None else 0
    return row.starts_at - timedelta(minutes=minutes)


def _view(row: BookingRow, venue: Venue | None) -> Booking:
    return Booking(row.id, row.venue_id, row.resident_id, row.starts_at, row.ends_at,
                   row.state, row.reason, _cancel_before(row, venue))  # type: ignore[arg-type]


def _slot_taken() -> BookingError:
    return BookingError("slot_taken", "someone else has just asked for this time; "
                                      "please choose another")
