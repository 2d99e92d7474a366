"""Feedback: a 1-5 rating and an optional short comment, on a catalogue service or on
something the resident did here and that is finished (a booking that took place, an activity
that ended, a request staff finished), once each."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from edge.clock import Clock, iso_utc
from edge.community.catalogue import CatalogueService
from edge.community.errors import CatalogueError, FeedbackError
from edge.community.models import BookingRow, FeedbackRow, RequestRow, SignupRow
from edge.community.residents import Resident
from edge.storage import Database, record_event

MAX_COMMENT_CHARS = 500
SUBJECT_KINDS = ("booking", "activity", "request")
FINISHED_REQUEST_STATUSES = ("done", "closed")


@dataclass(frozen=True)
class Feedback:
    feedback_id: str
    service_id: str | None
    rating: int
    comment: str | None
    submitted_at: datetime


class FeedbackService:
    def __init__(self, db: Database, catalogue: CatalogueService, clock: Clock) -> None:
        self._db = db
        self._catalogue = catalogue
        self._clock = clock

    def submit(self, resident: Resident | None, service_id: str, rating: int,
               comment: str | None = None) -> Feedback:
        comment = _checked(rating, comment)
        try:
            self._catalogue.service(service_id)
        except CatalogueError:
            raise FeedbackError("unknown_service", "there is no such service to rate") from None
        row = FeedbackRow(id=str(uuid.uuid4()), service_id=service_id, rating=rating,
                          comment=comment, resident_id=resident.resident_id if resident else None,
                          submitted_at=self._clock.now())
        with self._db.write() as s:
            s.add(row)
            record_event(s, "feedback.submitted",
                         {"feedback_id": row.id, "service_id": service_id, "rating": rating,
                          "comment": comment, "resident_id": row.resident_id,
                          "submitted_at": iso_utc(row.submitted_at)}, clock=self._clock)
        return Feedback(row.id, service_id, rating, comment, row.submitted_at)

    def rate_finished(self, resident: Resident, kind: str, subject_id: str, rating: int,
                      comment: str | None = None) -> Feedback:
        """Rate one's own finished booking, activity or request, once."""
        comment = _checked(rating, comment)
        if kind not in SUBJECT_KINDS:
            raise FeedbackError("bad_subject", f"no rating for {kind!r}")
        now = self._clock.now()
        row = FeedbackRow(id=str(uuid.uuid4()), service_id=None, subject_kind=kind,
                          subject_id=subject_id, rating=rating, comment=comment,
                          resident_id=resident.resident_id, submitted_at=now)
        with self._db.write() as s:
            if not self._finished(s, resident.resident_id, kind, subject_id):
                raise FeedbackError("not_finished", "only your own finished bookings, activities "
                                                    "and requests can be rated")
            if (kind, subject_id) in _rated(s, resident.resident_id):
                raise FeedbackError("already_rated", "you have already rated this")
            s.add(row)
            record_event(s, "feedback.submitted",
                         {"feedback_id": row.id, "service_id": None, "subject_kind": kind,
                          "subject_id": subject_id, "rating": rating, "comment": comment,
                          "resident_id": resident.resident_id, "submitted_at": iso_utc(now)},
                         clock=self._clock)
        return Feedback(row.id, None, rating, comment, now)

    def rated_by(self, resident_id: str) -> set[tuple[str, str]]:
        """(kind, id) of everything the resident has rated already."""
        with self._db.read() as s:
            return _rated(s, resident_id)

    def _finished(self, s: Session, resident_id: str, kind: str, subject_id: str) -> bool:
        now = self._clock.now()
        if kind == "booking":
            booking = s.get(BookingRow, subject_id)
            return (booking is not None and booking.resident_id == resident_id
                    and booking.state == "approved" and booking.ends_at <= now)
        if kind == "activity":
            if s.get(SignupRow, (subject_id, resident_id)) is None:
                return False
            try:
                return self._catalogue.activity(subject_id).ends_at <= now
            except CatalogueError:
                return False
        request = s.get(RequestRow, subject_id)
        return (request is not None and request.resident_id == resident_id
                and request.status in FINISHED_REQUEST_STATUSES)


def _checked(rating: int, comment: str | None) -> str | None:
    """The rating (1-5) and the comment, trimmed; FeedbackError otherwise."""
    # bool is an int in Python; a checkbox's True is not a rating.
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise FeedbackError("bad_rating", "a rating is a whole number from 1 to 5")
    if not isinstance(comment, str | None):
        raise FeedbackError("bad_input", "a comment must be text")
    comment = (comment or "").strip() or None
    if comment is not None and len(comment) > MAX_COMMENT_CHARS:
        raise FeedbackError("comment_too_long",
                            f"please keep the comment under {MAX_COMMENT_CHARS} characters")
    return comment


def _rated(s: Session, resident_id: str) -> set[tuple[str, str]]:
    rows = s.execute(select(FeedbackRow.subject_kind, FeedbackRow.subject_id)
                     .where(FeedbackRow.resident_id == resident_id,
                            FeedbackRow.subject_kind.is_not(None)))
    return {(kind, subject_id) for kind, subject_id in rows}
