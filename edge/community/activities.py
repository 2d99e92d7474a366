"""Activities: sign up while places are left, sign in on the day within the sign-in window.

A resident who did not sign up may still sign in at the door while places are left: walk-ins
are how community activities fill up (ADR 0054).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from edge.clock import Clock, iso_utc
from edge.community.catalogue import Activity, CatalogueService
from edge.community.errors import ActivityError
from edge.community.models import SignupRow
from edge.community.residents import Resident
from edge.storage import Database, record_event


@dataclass(frozen=True)
class Attendance:
    activity_id: str
    resident_id: str
    signed_up_at: datetime
    signed_in_at: datetime | None
    places_left: int


class ActivityService:
    def __init__(self, db: Database, catalogue: CatalogueService, clock: Clock) -> None:
        self._db = db
        self._catalogue = catalogue
        self._clock = clock

    def places_left(self, activity_id: str) -> int:
        activity = self._catalogue.activity(activity_id)
        with self._db.read() as s:
            return _places_left(s, activity)

    def board(self, activities: list[Activity], resident_id: str | None
              ) -> list[tuple[int, Attendance | None]]:
        """For each activity, in order: places left and, when `resident_id` is given, the
        resident's sign-up (as `attendance()` returns it). Two queries, whatever the count."""
        with self._db.read() as s:
            left = _places_left_of(s, activities)
            rows: dict[str, SignupRow] = {}
            if resident_id is not None and activities:
                rows = {row.activity_id: row for row in s.scalars(
                    select(SignupRow).where(SignupRow.resident_id == resident_id,
                                            SignupRow.activity_id.in_([a.id for a in activities])))}
            return [(left[a.id], _view(rows[a.id], left[a.id]) if a.id in rows else None)
                    for a in activities]

    def attendance(self, resident_id: str, activity_id: str) -> Attendance | None:
        """The resident's sign-up for the activity, if any (for "signed up" badges)."""
        activity = self._catalogue.activity(activity_id)
        with self._db.read() as s:
            row = s.get(SignupRow, (activity_id, resident_id))
            return None if row is None else _view(row, _places_left(s, activity))

    def sign_up(self, resident: Resident, activity_id: str) -> Attendance:
        activity = self._catalogue.activity(activity_id)
        if self._clock.now() >= activity.starts_at:
            raise ActivityError("started", "this activity has already started; "
                                           "sign in at the door if places are left")
        with self._db.write() as s:
            if s.get(SignupRow, (activity_id, resident.resident_id)) is not None:
                raise ActivityError("already_signed_up", "you are already signed up")
            row = self._add_signup(s, activity, resident)
            attendance = _view(row, _places_left(s, activity))
            record_event(s, "activity.signed_up",
                         {"activity_id": activity_id, "resident_id": resident.resident_id,
                          "time": iso_utc(row.signed_up_at)}, clock=self._clock)
        return attendance

    def signups_of(self, resident_id: str,
                   activities: list[Activity] | None = None) -> list[Attendance]:
        """A resident's sign-ups to activities still in the catalogue, soonest first.
        `activities` (the catalogue's, not yet ended), when the caller has them, saves a read."""
        known = {a.id: a for a in (self._catalogue.activities() if activities is None else activities)}
        with self._db.read() as s:
            rows = list(s.scalars(select(SignupRow).where(SignupRow.resident_id == resident_id)))
            mine = [row for row in rows if row.activity_id in known]
            mine.sort(key=lambda row: known[row.activity_id].starts_at)
            left = _places_left_of(s, [known[row.activity_id] for row in mine])
        return [_view(row, left[row.activity_id]) for row in mine]

    def cancel_sign_up(self, resident: Resident, activity_id: str) -> None:
        """Give the place back, until the activity starts; attendance, once signed in, stays."""
        activity = self._catalogue.activity(activity_id)
        if self._clock.now() >= activity.starts_at:
            raise ActivityError("started", "this activity has already started")
        with self._db.write() as s:
            row = s.get(SignupRow, (activity_id, resident.resident_id))
            if row is None:
                raise ActivityError("not_signed_up", "you are not signed up for this activity")
            if row.signed_in_at is not None:
                raise ActivityError("signed_in", "you have already signed in")
            s.delete(row)
            record_event(s, "activity.sign_up_cancelled",
                         {"activity_id": activity_id, "resident_id": resident.resident_id,
                          "time": iso_utc(self._clock.now())}, clock=self._clock)

    def sign_in(self, resident: Resident, activity_id: str) -> Attendance:
        """Record attendance once; signing in again returns the first record, no new event."""
        activity = self._catalogue.activity(activity_id)
        now = self._clock.now()
        with self._db.write() as s:
            row = s.get(SignupRow, (activity_id, resident.resident_id))
            if row is not None and row.signed_in_at is not None:
                return _view(row, _places_left(s, activity))
            if now < activity.signin_opens_at:
                raise ActivityError("signin_not_open",
                                    f"sign-in opens {activity.signin_opens_minutes_before} "
                                    "minutes before the start")
            if now > activity.signin_closes_at:
                raise ActivityError("signin_closed", "sign-in for this activity has closed")
            if row is None:
                row = self._add_signup(s, activity, resident)
            row.signed_in_at, row.signin_method = now, resident.identified_by
            attendance = _view(row, _places_left(s, activity))
            record_event(s, "signin.recorded",
                         {"activity_id": activity_id, "resident_id": resident.resident_id,
                          "method": resident.identified_by, "time": iso_utc(now)},
                         clock=self._clock)
        return attendance

    def _add_signup(self, s: Session, activity: Activity, resident: Resident) -> SignupRow:
        if _places_left(s, activity) <= 0:
            raise ActivityError("full", "this activity is full")
        row = SignupRow(activity_id=activity.id, resident_id=resident.resident_id,
                        signed_up_at=self._clock.now())
        s.add(row)
        s.flush()
        return row


def _places_left(s: Session, activity: Activity) -> int:
    taken = s.scalar(select(func.count()).select_from(SignupRow)
                     .where(SignupRow.activity_id == activity.id)) or 0
    return max(activity.capacity - taken, 0)


def _places_left_of(s: Session, activities: list[Activity]) -> dict[str, int]:
    if not activities:
        return {}
    ids = [a.id for a in activities]
    taken = dict(s.execute(select(SignupRow.activity_id, func.count())
                           .where(SignupRow.activity_id.in_(ids))
                           .group_by(SignupRow.activity_id)).all())
    return {a.id: max(a.capacity - taken.get(a.id, 0), 0) for a in activities}


def _view(row: SignupRow, places_left: int) -> Attendance:
    return Attendance(row.activity_id, row.resident_id, row.signed_up_at, row.signed_in_at,
                      places_left)
